"""``kdzoo list models|methods|datasets|configs|grids|support|coverage``: what kdzoo knows, as text tables."""

from __future__ import annotations

import argparse

import torch

from ..text_table import text_table

LISTS = ("models", "methods", "datasets", "configs", "grids", "support", "coverage")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="list models, methods, datasets, packaged configs, benchmark grids, "
                                           "which method runs on which kind of network (support), or which "
                                           "torchvision and timm networks train with KD and AT (coverage)")
    p.add_argument("what", choices=list(LISTS))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(render(args.what))
    return 0


def models() -> str:
    from ..models import create_model, list_models, model_info

    rows = []
    for name in list_models():
        info = model_info(name)
        params = sum(p.numel() for p in create_model(name, num_classes=100).parameters())
        rows.append([name, info["family"], f"{params / 1e6:.2f}M", f"{info['lr']:g}", info["source"]])
    return (text_table(["model", "family", "params (100 classes)", "recipe lr", "source"], rows)
            + "\n\nrecipe lr: RepDistiller's CIFAR-100 learning rate, the default unless --lr or a dataset recipe sets "
              "another (imagefolder: 0.1; `kdzoo list datasets`).\n\n" + OTHER_MODELS)


#: How to name networks from other libraries, shown under the zoo's table.
OTHER_MODELS = """Other networks (every method whose features they have; `kdzoo list methods` says what each reads):
  timm/NAME          any timm model (pip install 'kdzoo[timm]'), e.g. timm/convnext_atto, timm/mobilenetv3_small_100;
                     builder options with --model-opt / --teacher-opt, e.g. img_size=32 patch_size=4 for a ViT
  torchvision/NAME   any torchvision classification model, e.g. torchvision/resnet18, torchvision/efficientnet_b0
  your own module    Python API: kdzoo.Distiller(student, teacher, ...) or kdzoo.models.wrap_model(model,
                     feature_layers=[...]); see docs/guide/any-network.md
Weights: --teacher PATH (kdzoo run/checkpoint, RepDistiller/mdistiller file, timm/torchvision state dict) with
--teacher-arch NAME, or --teacher-pretrained (the library's own weights; needs network access). The published
CIFAR-100 teachers of the zoo: --teacher pretrained:NAME (`kdzoo teachers`).
timm/torchvision networks down-sample 32x: a 32 px image ends at a 1x1 map (fine for logit and vector methods)."""


#: The pair on which ``kdzoo list methods`` counts each method's extra parameters: the CIFAR-100 pair of
#: RepDistiller's, DKD's and mdistiller's tables (100 classes, 32x32 images, default method options).
EXAMPLE_PAIR = ("resnet32x4", "resnet8x4")


def methods() -> str:
    from ..methods import list_methods, method_class, method_needs, method_options

    blocks = []
    for name in list_methods():
        cls, needs = method_class(name), method_needs(name)
        options = ", ".join(f"{k}={v!r}" for k, v in method_options(name).items()) or "none"
        lines = [name, f"    paper:    {cls.paper}", f"    features: {cls.uses}",
                 f"    reads:    {needs.describe()}", f"    weights:  {cls.default_weights.describe()}",
                 f"    options:  {options}",
                 f"    extra params: {extra_parameters(name):,}"]
        if cls.logit_std_defaults is not None:
            ls = cls.logit_std_defaults
            changed = "".join(f", {k}={v!r}" for k, v in ls.options.items())
            kd_temperature = " (the KD term's T defaults to 2)" if ls.weights.alpha else ""
            lines.append(f"    --logit-std: {ls.weights.describe()}{changed}{kd_temperature}")
        if not needs.needs_teacher:
            lines.append("    no teacher (self-distillation)")
        blocks.append("\n".join(lines))
    teacher, student = EXAMPLE_PAIR
    return ("Loss = gamma*CE + alpha*KD(T_s, T_t) + beta*method; override with --gamma/--alpha/--beta, "
            "options with --method-opt KEY=VALUE.\n"
            f"Extra params: the trainable parameters a method adds to the student (connectors, embeddings, heads, "
            f"exits; never the frozen teacher), here for {teacher} -> {student} on CIFAR-100 ({student} alone: "
            f"{extra_parameters(None):,}). They depend on the pair: each run's header and summary.json "
            f"(extra_params) give its own.\n\n" + "\n".join(blocks))


def extra_parameters(method: str | None) -> int:
    """The trainable parameters ``method`` adds to :data:`EXAMPLE_PAIR`'s student on CIFAR-100; with None, the
    student's own. Counted on the meta device (shapes only: nothing is computed), or on the CPU for a method that
    reads values when it is built (CRD's sampler, OFD's margins)."""
    try:
        return _count_parameters(method, torch.device("meta"))
    except NotImplementedError:  # "Cannot copy out of meta tensor"
        return _count_parameters(method, torch.device("cpu"))


def _count_parameters(method: str | None, device: torch.device) -> int:
    from ..distiller import Distiller, trainable_parameters
    from ..methods import method_needs
    from ..models import create_model

    teacher_arch, student_arch = EXAMPLE_PAIR
    with device:
        student = create_model(student_arch, num_classes=100)
        if method is None:
            return trainable_parameters(student)
        teacher = create_model(teacher_arch, num_classes=100) if method_needs(method).needs_teacher else None
        labels = torch.arange(50_000) % 100  # CIFAR-100's training split, for methods with a memory bank (CRD)
        return Distiller(student, teacher, method, input_shape=(3, 32, 32), train_labels=labels).extra_parameters()


def datasets() -> str:
    from ..config import dataset_recipe, option_text
    from ..data import dataset_info, list_datasets

    rows, details = [], []
    for name in list_datasets():
        info = dataset_info(name)
        rows.append([name, str(info.get("classes", "-")), "x".join(map(str, info.get("image_size", ("-",)))),
                     str(info.get("in_channels", "-")), info.get("description", "")])
        recipe = ", ".join(f"{k} {option_text(v)}" for k, v in dataset_recipe(name).items())
        options = ", ".join(f"{k}={v!r}" for k, v in info["options"].items())
        details.append(f"{name}\n    recipe:  {recipe or 'none (the CIFAR-100 defaults)'}\n"
                       f"    options: {options or 'none'}")
    return (text_table(["dataset", "classes", "image size", "channels", "description"], rows)
            + "\n\nRecipe: the dataset's defaults instead of RepDistiller's CIFAR-100 ones (flags and --config "
              "override them; its milestones scale with --epochs). Options: --dataset-opt KEY=VALUE, with their "
              "defaults.\n\n"
            + "\n".join(details))


def configs() -> str:
    from ..config import packaged_configs

    return "\n".join(packaged_configs())


def grids() -> str:
    from ..grid.grid_file import load_grid, packaged_grids

    rows = []
    for name in packaged_grids():
        grid = load_grid(name)
        rows.append([name, f"{len(grid.pairs)} x {len(grid.variants)} x {len(grid.seeds)}", grid.description])
    return ("Run with `kdzoo bench --grid NAME` (or a grid file of your own; see `kdzoo bench --help`).\n\n"
            + text_table(["grid", "pairs x methods x seeds", "description"], rows))


def support() -> str:
    from ..support_table import support_table

    return ("Where each method runs: a network of each family as student and as teacher of a zoo ResNet (a cell\n"
            "says where it can stand, or what the method reads that the family lacks).\n\n" + support_table())


def coverage() -> str:
    from ..coverage import coverage_table

    return ("Which torchvision and timm networks train with KD and AT: each at its smallest input, as the student and\n"
            "as the teacher of a zoo ResNet, two steps of each (or what refuses it). Takes a few minutes.\n\n"
            + coverage_table())


def render(what: str) -> str:
    """The text of ``kdzoo list WHAT``."""
    return {"models": models, "methods": methods, "datasets": datasets, "configs": configs, "grids": grids,
            "support": support, "coverage": coverage}[what]()
