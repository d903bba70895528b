"""The generated end of ``docs/zh-CN/methods.md``: a section for every method that has no Chinese paragraph yet.

The page's paragraphs are written in Chinese by hand, one ``### `name``` section per method. A method added since
has none; this module writes one for it between :data:`BEGIN` and :data:`END`, marked as waiting for its Chinese
paragraph: the English one-line summary (the method class's docstring), the paper and the default weights. Moving a
section above the markers and writing it in Chinese takes the method out of the generated part at the next run::

    python -m kdzoo.docgen.zh_methods      # rewrites the generated part (run from the repository root)
"""

from __future__ import annotations

import re
from pathlib import Path

from ..atomic_text import write_text_atomic
from ..errors import KdzooError
from ..methods import list_methods, method_class
from .methods import short_citation

PAGE = Path("docs/zh-CN/methods.md")
BEGIN = "<!-- zh-methods:begin：以下由 `python -m kdzoo.docgen.zh_methods` 生成，不要手改 -->"
END = "<!-- zh-methods:end -->"
SECTION = re.compile(r"^### `([a-z_0-9]+)`$", re.M)
PENDING = "（尚无中文说明，先给出英文摘要）"


def written(page: str) -> set[str]:
    """The methods with a hand-written section: those above :data:`BEGIN`."""
    if BEGIN not in page or END not in page:
        raise KdzooError(f"{PAGE}: no {BEGIN} ... {END} markers for the generated sections; put them at the end.")
    return set(SECTION.findall(page.split(BEGIN, 1)[0]))


def section(name: str) -> str:
    cls = method_class(name)
    weights = cls.default_weights
    summary = (cls.__doc__ or "").strip().splitlines()[0]
    return (f"### `{name}`\n\n{PENDING}{summary}（{short_citation(cls)}）\n"
            f"默认 γ = {weights.gamma:g}、α = {weights.alpha:g}、β = {weights.beta:g}。"
            f"公式、选项和注意事项见英文页面 [methods/{name}.md](../methods/{name}.md)。\n")


def generated(page: str) -> str:
    """The part between the markers: nothing when every method has its Chinese paragraph."""
    missing = sorted(set(list_methods()) - written(page))
    if not missing:
        return ""
    return ("## 尚无中文说明的方法\n\n这些方法还没有中文段落：下面先给出英文的一句话摘要和默认权重。"
            "写中文段落时，把小节移到上面对应的类别里再运行 `make docs`。\n\n" + "\n".join(map(section, missing)))


def render(page: str) -> str:
    """``page`` with its generated part rewritten."""
    body = generated(page)
    head, rest = page.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{body}{END}{rest.split(END, 1)[1]}"


def write(path: Path = PAGE) -> Path:
    write_text_atomic(path, render(path.read_text(encoding="utf-8")))
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
