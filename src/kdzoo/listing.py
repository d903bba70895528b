"""Text tables for ``kdzoo list models|methods|datasets|configs``."""

from __future__ import annotations


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def models() -> str:
    from .models import create_model, list_models, model_info

    rows = []
    for name in list_models():
        info = model_info(name)
        params = sum(p.numel() for p in create_model(name, num_classes=100).parameters())
        rows.append([name, info["family"], f"{params / 1e6:.2f}M", f"{info['lr']:g}", info["source"]])
    return table(["model", "family", "params (100 classes)", "recipe lr", "source"], rows)


def methods() -> str:
    from .methods import list_methods, method_class, method_options

    blocks = []
    for name in list_methods():
        cls = method_class(name)
        w = cls.default_weights
        options = ", ".join(f"{k}={v!r}" for k, v in method_options(name).items()) or "none"
        blocks.append(f"{name}\n    paper:    {cls.paper}\n    features: {cls.uses}\n"
                      f"    weights:  gamma {w.gamma:g}, alpha {w.alpha:g}, beta {w.beta:g}\n    options:  {options}")
    return ("Loss = gamma*CE + alpha*KD(T_s, T_t) + beta*method; override with --gamma/--alpha/--beta, "
            "options with --method-opt KEY=VALUE.\n\n" + "\n".join(blocks))


def datasets() -> str:
    from .data import dataset_info, list_datasets

    rows = []
    for name in list_datasets():
        info = dataset_info(name)
        rows.append([name, str(info.get("classes", "-")), "x".join(map(str, info.get("image_size", ("-",)))),
                     str(info.get("in_channels", "-")), info.get("description", "")])
    return table(["dataset", "classes", "image size", "channels", "description"], rows)


def configs() -> str:
    from .config import packaged_configs

    return "\n".join(packaged_configs())


def render(what: str) -> str:
    return {"models": models, "methods": methods, "datasets": datasets, "configs": configs}[what]()
