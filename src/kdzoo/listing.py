"""Text tables for ``kdzoo list models|methods|datasets|configs|grids``."""

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
    return (table(["model", "family", "params (100 classes)", "recipe lr", "source"], rows)
            + "\n\nrecipe lr: RepDistiller's CIFAR-100 learning rate, the default unless --lr or a dataset recipe sets "
              "another (imagefolder: 0.1; `kdzoo list datasets`).\n\n" + OTHER_MODELS)


#: How to name networks from other libraries, shown under the zoo's table.
OTHER_MODELS = """Other networks (every method whose features they have; `kdzoo list methods` says what each reads):
  timm/NAME          any timm model (pip install 'kdzoo[timm]'), e.g. timm/convnext_atto, timm/mobilenetv3_small_100;
                     builder options with --model-opt / --teacher-opt, e.g. img_size=32 patch_size=4 for a ViT
  torchvision/NAME   any torchvision classification model, e.g. torchvision/resnet18, torchvision/efficientnet_b0
  your own module    Python API: kdzoo.Distiller(student, teacher, ...) or kdzoo.models.wrap_model(model,
                     feature_layers=[...]); see the README
Weights: --teacher PATH (kdzoo run/checkpoint, RepDistiller/mdistiller file, timm/torchvision state dict) with
--teacher-arch NAME, or --teacher-pretrained (the library's own weights; needs network access).
timm/torchvision networks down-sample 32x: a 32 px image ends at a 1x1 map (fine for logit and vector methods)."""


def methods() -> str:
    from .methods import list_methods, method_class, method_options

    blocks = []
    for name in list_methods():
        cls = method_class(name)
        options = ", ".join(f"{k}={v!r}" for k, v in method_options(name).items()) or "none"
        lines = [name, f"    paper:    {cls.paper}", f"    features: {cls.uses}", f"    reads:    {cls.reads.describe()}",
                 f"    weights:  {weights_text(cls.default_weights)}", f"    options:  {options}"]
        if cls.logit_std_defaults is not None:
            ls = cls.logit_std_defaults
            changed = "".join(f", {k}={v!r}" for k, v in ls.options.items())
            kd_temperature = " (the KD term's T defaults to 2)" if ls.weights.alpha else ""
            lines.append(f"    --logit-std: {weights_text(ls.weights)}{changed}{kd_temperature}")
        if not cls.reads.needs_teacher:
            lines.append("    no teacher (self-distillation)")
        blocks.append("\n".join(lines))
    return ("Loss = gamma*CE + alpha*KD(T_s, T_t) + beta*method; override with --gamma/--alpha/--beta, "
            "options with --method-opt KEY=VALUE.\n\n" + "\n".join(blocks))


def weights_text(w) -> str:
    return f"gamma {w.gamma:g}, alpha {w.alpha:g}, beta {w.beta:g}"


def datasets() -> str:
    from .config import dataset_recipe, option_text
    from .data import dataset_info, list_datasets

    rows, details = [], []
    for name in list_datasets():
        info = dataset_info(name)
        rows.append([name, str(info.get("classes", "-")), "x".join(map(str, info.get("image_size", ("-",)))),
                     str(info.get("in_channels", "-")), info.get("description", "")])
        recipe = ", ".join(f"{k} {option_text(v)}" for k, v in dataset_recipe(name).items())
        options = ", ".join(f"{k}={v!r}" for k, v in info["options"].items())
        details.append(f"{name}\n    recipe:  {recipe or 'none (the CIFAR-100 defaults)'}\n    options: {options or 'none'}")
    return (table(["dataset", "classes", "image size", "channels", "description"], rows)
            + "\n\nRecipe: the dataset's defaults instead of RepDistiller's CIFAR-100 ones (flags and --config override "
              "them; its milestones scale with --epochs). Options: --dataset-opt KEY=VALUE, with their defaults.\n\n"
            + "\n".join(details))


def configs() -> str:
    from .config import packaged_configs

    return "\n".join(packaged_configs())


def grids() -> str:
    from .bench.grid import load_grid, packaged_grids

    rows = []
    for name in packaged_grids():
        grid = load_grid(name)
        rows.append([name, f"{len(grid.pairs)} x {len(grid.variants)} x {len(grid.seeds)}", grid.description])
    return ("Run with `kdzoo bench --grid NAME` (or a grid file of your own; see `kdzoo bench --help`).\n\n"
            + table(["grid", "pairs x methods x seeds", "description"], rows))


def support() -> str:
    from .support import support_table

    return ("Where each method runs: a network of each family as student and as teacher of a zoo ResNet (a cell\n"
            "says where it can stand, or what the method reads that the family lacks).\n\n" + support_table())


def render(what: str) -> str:
    return {"models": models, "methods": methods, "datasets": datasets, "configs": configs, "grids": grids,
            "support": support}[what]()
