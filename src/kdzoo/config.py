"""Run configuration: one typed dataclass, layered from defaults, a dataset recipe, a YAML file and
CLI flags (later layers win), validated early with errors that name the bad value and the fix.

The dataclass defaults are RepDistiller's CIFAR-100 recipe (SGD 0.9, wd 5e-4, batch 64, 240 epochs,
lr 0.05 -- 0.01 for MobileNetV2/ShuffleV1/ShuffleV2 -- decayed x0.1 at 150/180/210). Each dataset
may ship a recipe in ``kdzoo/configs/recipes/<dataset>.yaml`` that changes some of them.
YAML is loaded safely (:mod:`kdzoo.yaml_load`): configs name things, they never execute code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml

from . import yaml_load
from .config_checks import check_run_options, flag, run_flag
from .declared import SEED, OneOf, Range, declared_options
from .errors import ConfigError, did_you_mean

#: RepDistiller decays at 150/180/210 of 240 epochs; without explicit milestones kdzoo scales these.
MILESTONE_FRACTIONS = (0.625, 0.75, 0.875)

#: Bounds shared by several fields.
WHOLE = Range(ge=1)
COUNT = Range(ge=0)
LOSS_WEIGHT = Range(ge=0, reference="a loss weight; 0 drops the term")
TEMPERATURE = Range(gt=0, reference="a temperature; default 4, 2 with --logit-std")
#: The largest learning rate: 100 times the recipes' largest (0.1). Far beyond it the optimizer step overflows
#: float32 (``--lr 1e39``: "value cannot be converted to type float without overflow").
LR = Range(gt=0, le=10, reference="the recipes use 0.01 to 0.1")
#: The largest weight decay: 2000 times RepDistiller's (AdamW recipes use up to 0.3); a weight decay of 1 already
#: pulls every weight towards 0 at the learning rate, and above float32's range the optimizer step overflows.
WEIGHT_DECAY = Range(ge=0, le=1, reference="RepDistiller: 5e-4")


def resolve_temperatures(t_student: float | None, t_teacher: float | None, logit_std: bool) -> tuple[float, float]:
    """The KD temperatures: unset ones default to 4 (Hinton et al.), or to 2 with logit standardization (the
    base temperature of Sun et al., CVPR 2024)."""
    default = 2.0 if logit_std else 4.0
    return (default if t_student is None else float(t_student), default if t_teacher is None else float(t_teacher))


class Role(Enum):
    """What a :class:`RunConfig` field is to the code that reads a run's options: each field lists its roles in its
    metadata (``"roles"``, beside ``"help"``), and every set of option names is a view of them (:func:`fields_with`)."""

    DISTILL = "a flag of `kdzoo distill` only (the teacher, the method and their settings)"
    RUNTIME = ("may differ between a run on disk and the config that reuses it (a grid's runner, the report's groups): "
               "paths, device, speed and logging")
    RESUMABLE = "a resumed run may change it (--resume): it does not change what the run learns from"
    POOLED = "runs that differ only in it (and runtime options) are seeds of one experiment in a report"
    METHOD = "the method's, not the student's training: a run and its paired baseline run may differ in it"
    CACHE_KEY = "decides the teacher-cache key beside the method's views (as itself or what it resolves to)"
    RESERVED = "the grid runner sets it for every run (from `pairs:`, `seeds:`, `teachers:`, its folders)"


@dataclass
class RunConfig:
    """Everything a `kdzoo train` or `kdzoo distill` run needs. Field docs double as CLI help."""

    # what to train, on what
    model: str | None = field(default=None, metadata={
        "distill_flags": ("--student",), "roles": (Role.RESERVED,),
        "help": "architecture to train (the student when distilling): a zoo name, timm/NAME or torchvision/NAME"})
    model_options: dict[str, Any] = field(default_factory=dict, metadata={
        "flag": "--model-opt", "roles": (),
        "help": "options for the architecture's builder KEY=VALUE (timm/torchvision models: e.g. img_size=32 "
                "patch_size=4 for a ViT, pretrained=true)"})
    feature_layers: list[str] | None = field(default=None, metadata={
        "roles": (),
        "help": "the modules whose outputs are the architecture's stages for feature methods, comma-separated "
                "(e.g. layer1,layer2,layer3; default: found from the forward pass)"})
    dataset: str = field(default="cifar100", metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "dataset name (kdzoo list datasets)"})
    data_root: str | None = field(default=None, metadata={
        "roles": (Role.RUNTIME, Role.CACHE_KEY),
        "help": "data folder (default: $KDZOO_DATA or ./data)"})
    download: bool = field(default=False, metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE),
        "help": "download the dataset with torchvision if missing"})
    train_subset: Annotated[int, WHOLE] | None = field(default=None, metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "train on a fixed random subset of N images"})
    test_subset: Annotated[int, WHOLE] | None = field(default=None, metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "evaluate on a fixed random subset of N images"})
    data_seed: Annotated[int, SEED] = field(default=0, metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "seed that draws --train-subset/--test-subset (and any split kdzoo makes); independent of --seed, "
                "so runs with different seeds see the same images"})
    augment: bool = field(default=True, metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "random crop (padding 4) and flip during training"})
    dataset_options: dict[str, Any] = field(default_factory=dict, metadata={
        "flag": "--dataset-opt", "roles": (Role.CACHE_KEY,),
        "help": "dataset-specific options KEY=VALUE"})
    # distillation
    teacher: str | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.RUNTIME, Role.METHOD, Role.CACHE_KEY, Role.RESERVED),
        "help": "teacher: kdzoo run folder or checkpoint, a RepDistiller/mdistiller file, or pretrained:NAME (a "
                "published CIFAR-100 teacher, fetched once; `kdzoo teachers`)"})
    teacher_arch: str | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD, Role.CACHE_KEY, Role.RESERVED),
        "help": "teacher architecture when the file does not say it (a zoo name, timm/NAME or torchvision/NAME)"})
    teacher_options: dict[str, Any] = field(default_factory=dict, metadata={
        "flag": "--teacher-opt", "roles": (Role.DISTILL, Role.METHOD, Role.CACHE_KEY),
        "help": "options for the teacher architecture's builder KEY=VALUE (e.g. img_size=32 for a timm ViT)"})
    teacher_feature_layers: list[str] | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "the teacher's stage modules for feature methods, comma-separated (default: what the teacher's run "
                "used, else found from the forward pass)"})
    teacher_pretrained: bool = field(default=False, metadata={
        "roles": (Role.DISTILL, Role.METHOD, Role.CACHE_KEY),
        "help": "teacher = --teacher-arch timm/NAME or torchvision/NAME with that library's own pretrained weights "
                "(needs network access)"})
    method: str | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "distillation method (kdzoo list methods); default kd"})
    method_options: dict[str, Any] = field(default_factory=dict, metadata={
        "flag": "--method-opt", "roles": (Role.DISTILL, Role.METHOD),
        "help": "method options KEY=VALUE"})
    gamma: Annotated[float, LOSS_WEIGHT] | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "weight of cross-entropy (default: the method's)"})
    alpha: Annotated[float, LOSS_WEIGHT] | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "weight of the KD term (default: the method's)"})
    beta: Annotated[float, LOSS_WEIGHT] | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "weight of the method's own loss (default: the method's)"})
    t_student: Annotated[float, TEMPERATURE] | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "KD temperature applied to the student's logits (default: 4; 2 with --logit-std)"})
    t_teacher: Annotated[float, TEMPERATURE] | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "KD temperature applied to the teacher's logits (default: 4; 2 with --logit-std)"})
    logit_std: bool = field(default=False, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "logit standardization (Sun et al., CVPR 2024): z-score both networks' logits before the temperature; "
                "sets the method's reference weights for it"})
    eval_teacher: bool = field(default=True, metadata={
        "roles": (Role.DISTILL, Role.RUNTIME, Role.RESUMABLE),
        "help": "measure the teacher's test accuracy before distilling"})
    teacher_cache: str | None = field(default=None, metadata={
        "roles": (Role.DISTILL, Role.RUNTIME, Role.RESUMABLE),
        "help": "folder of exact teacher-output caches: each training batch's teacher logits are read from it when a "
                "run with the same teacher, data, seed, batch size and numerics wrote them, computed and written "
                "otherwise (logit-only methods)"})
    teacher_cache_verify: Annotated[str, OneOf("none", "batch", "all")] = field(default="batch", metadata={
        "roles": (Role.DISTILL, Role.RUNTIME, Role.RESUMABLE),
        "help": "which cached teacher outputs are recomputed and compared each epoch: one random batch, every batch, "
                "or none"})
    # optimisation
    epochs: Annotated[int, Range(ge=1, reference="to evaluate a checkpoint without training use `kdzoo eval "
                                                  "CHECKPOINT`")] = field(default=240, metadata={
        "roles": (Role.RESUMABLE,),
        "help": "training epochs"})
    batch_size: Annotated[int, WHOLE] = field(default=64, metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "training batch size"})
    eval_batch_size: Annotated[int, WHOLE] = field(default=256, metadata={
        "roles": (Role.RESUMABLE, Role.POOLED),
        "help": "evaluation batch size"})
    optimizer: Annotated[str, OneOf("sgd", "adamw", "dot")] = field(default="sgd", metadata={
        "roles": (),
        "help": "the optimiser; dot is DOT, Zhao et al., ICCV 2023: SGD with momentum + dot_delta for the "
                "distillation gradients, - dot_delta for the cross-entropy's"})
    lr: Annotated[float, LR] | None = field(default=None, metadata={
        "roles": (),
        "help": "initial learning rate (default: the architecture's recipe value)"})
    momentum: Annotated[float, Range(ge=0, lt=1, reference="RepDistiller: 0.9")] = field(default=0.9, metadata={
        "roles": (),
        "help": "SGD momentum"})
    nesterov: bool = field(default=False, metadata={
        "roles": (),
        "help": "Nesterov momentum"})
    dot_delta: Annotated[float, COUNT] = field(default=0.075, metadata={
        "roles": (Role.DISTILL, Role.METHOD),
        "help": "DOT's momentum offset (0.075 on CIFAR/Tiny-ImageNet, 0.09 on ImageNet)"})
    weight_decay: Annotated[float, WEIGHT_DECAY] = field(default=5e-4, metadata={
        "roles": (),
        "help": "weight decay"})
    schedule: Annotated[str, OneOf("step", "cosine", "constant")] = field(default="step", metadata={
        "roles": (),
        "help": "learning-rate schedule"})
    milestones: list[int] | None = field(default=None, metadata={
        "roles": (),
        "help": "epochs after which a step schedule decays (default: 62.5/75/87.5%% of the epochs, i.e. 150 180 210 of "
                "240)"})
    lr_decay: Annotated[float, Range(gt=0, le=1, reference="it multiplies the learning rate at each milestone; "
                                                           "RepDistiller: 0.1")] = field(default=0.1, metadata={
        "roles": (),
        "help": "step-schedule decay factor"})
    warmup_epochs: Annotated[int, COUNT] = field(default=0, metadata={
        "roles": (),
        "help": "linear learning-rate warm-up epochs"})
    # distributed (torchrun)
    scale_lr: bool = field(default=False, metadata={
        "roles": (),
        "help": "under torchrun, multiply the lr by the number of processes (linear scaling rule; --batch-size is per "
                "process)"})
    sync_bn: bool = field(default=False, metadata={
        "roles": (),
        "help": "under torchrun on GPUs, synchronise BatchNorm statistics across processes (SyncBatchNorm)"})
    # runtime
    seed: Annotated[int, SEED] = field(default=0, metadata={
        "roles": (Role.POOLED, Role.CACHE_KEY, Role.RESERVED),
        "help": "random seed"})
    deterministic: bool = field(default=False, metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "deterministic algorithms (slower; bitwise-reproducible resume)"})
    device: str = field(default="auto", metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE, Role.CACHE_KEY),
        "help": "auto, cpu, cuda, cuda:N or mps"})
    amp: Annotated[str, OneOf("auto", "none", "bf16", "fp16")] = field(default="auto", metadata={
        "roles": (Role.CACHE_KEY,),
        "help": "mixed precision: auto is bf16 on CUDA GPUs that support it, none elsewhere; fp16 needs CUDA"})
    channels_last: bool | None = field(default=None, metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE, Role.CACHE_KEY),
        "help": "channels-last memory format for both networks (default: both on CUDA, the teacher alone on CPU)"})
    compile: bool = field(default=False, metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE, Role.CACHE_KEY),
        "help": "torch.compile the student, the teacher and the loss (minutes of compilation first)"})
    compile_mode: Annotated[str, OneOf("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")] = (
        field(default="default", metadata={
            "roles": (Role.RUNTIME, Role.RESUMABLE, Role.CACHE_KEY),
            "help": "torch.compile mode"}))
    num_workers: Annotated[int, COUNT] | None = field(default=None, metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE),
        "help": "data-loading workers for streamed datasets (default: chosen for the machine)"})
    # output
    output_dir: str = field(default="runs", metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE, Role.RESERVED),
        "help": "folder that holds the run folders"})
    name: str | None = field(default=None, metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE, Role.RESERVED),
        "help": "run folder name (default: derived from the run)"})
    tensorboard: bool = field(default=True, metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE),
        "help": "write TensorBoard events"})
    progress: bool = field(default=True, metadata={
        "roles": (Role.RUNTIME, Role.RESUMABLE),
        "help": "show a progress bar"})

    @property
    def distilling(self) -> bool:
        """A teacher is given (self-distillation methods run without one: see ``method``)."""
        return self.teacher is not None or self.teacher_pretrained

    @property
    def run_method(self) -> str:
        """The method the run trains with: the one given, else kd with a teacher, else vanilla (plain training)."""
        return self.method or ("kd" if self.distilling else "vanilla")

    @property
    def has_method(self) -> bool:
        """The run has a distillation objective: a teacher (method default kd) or a self-distillation method
        (:func:`distills`)."""
        return distills(vars(self))

    def temperatures(self) -> tuple[float, float]:
        """``(t_student, t_teacher)``; unset ones default to 4, or LS's base temperature 2 with ``logit_std``."""
        return resolve_temperatures(self.t_student, self.t_teacher, self.logit_std)

    def resolved_milestones(self) -> list[int]:
        if self.milestones is not None:
            return list(self.milestones)
        return [round(self.epochs * f) for f in MILESTONE_FRACTIONS]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_NAMES = [f.name for f in fields(RunConfig)]
#: Each run option's declaration (type, bounds, choices) and default.
RUN_OPTIONS = declared_options(RunConfig)


def declared_roles(config: type) -> dict[str, frozenset[Role]]:
    """Each field of the config dataclass ``config`` with the roles it declares (``"roles"`` in its metadata, ``()``
    for none); a field that declares none, or something that is not a :class:`Role`, is a ``TypeError`` naming it
    (raised when kdzoo is imported, so a new field cannot be missed silently)."""
    roles = {}
    for f in fields(config):
        declared = f.metadata.get("roles")
        if not isinstance(declared, tuple) or not all(isinstance(r, Role) for r in declared):
            raise TypeError(f"{config.__name__}.{f.name} must declare its roles in its metadata: \"roles\": a tuple "
                            f"of kdzoo.config.Role members (() for none), got {declared!r}. Roles: "
                            f"{', '.join(r.name for r in Role)}.")
        roles[f.name] = frozenset(declared)
    return roles


#: Every run option's roles.
ROLES = declared_roles(RunConfig)


def fields_with(role: Role, config: type = RunConfig) -> frozenset[str]:
    """The names of the fields of ``config`` (:class:`RunConfig` or a subclass) that declare ``role``."""
    roles = ROLES if config is RunConfig else declared_roles(config)
    return frozenset(name for name, declared in roles.items() if role in declared)


def distill_flags(f: dataclasses.Field) -> tuple[str, ...]:
    """Other flags ``kdzoo distill`` names the field ``f`` by (``--student`` for ``model``)."""
    return tuple(f.metadata.get("distill_flags", ()))


#: Flag names that differ from the option they set: ``--student`` sets ``model``, ``--method-opt`` ``method_options``
#: (each field's ``"flag"`` and ``"distill_flags"``).
FLAG_ALIASES = {name[2:].replace("-", "_"): f.name for f in fields(RunConfig)
                for name in (run_flag(f), *distill_flags(f)) if name != flag(f.name)}


def option_name(key: Any) -> str:
    """The run option a config key or flag name sets (``t-student`` -> ``t_student``, ``student`` -> ``model``)."""
    name = str(key).replace("-", "_")
    return FLAG_ALIASES.get(name, name)


def distills(values: Mapping[str, Any]) -> bool:
    """The one rule for "is this a distillation run" (``kdzoo distill``, not ``kdzoo train``), of a config or of a
    run's saved options: a teacher is given (a file or ``pretrained:NAME``, or ``--teacher-pretrained``; the method
    then defaults to kd) or a method is (self-distillation runs without a teacher)."""
    return (values.get("teacher") is not None or bool(values.get("teacher_pretrained"))
            or values.get("method") is not None)


def draws_subset(values: Mapping[str, Any]) -> bool:
    """Whether run options take a train or a test subset, whose images the data seed then chooses."""
    return values.get("train_subset") is not None or values.get("test_subset") is not None


def upgrade_saved_config(values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A saved run's options, those of a run saved before ``data_seed`` existed completed so that it sees
    the same images as before, and a note saying so (None for newer runs).

    Such runs drew their subsets from the run seed, which therefore becomes their data seed (runs on
    whole splits get the default: no seed changed their images); the synthetic dataset's own seed
    option, then ``data_seed``, is now ``generator_seed``."""
    if "data_seed" in values:
        return values, None
    options = dict(values.get("dataset_options") or {})
    if "data_seed" in options:
        options["generator_seed"] = options.pop("data_seed")
    if draws_subset(values):
        data_seed = values.get("seed", RunConfig.seed)
        why = f"its subsets stay drawn from its run seed: data seed {data_seed}"
    else:
        data_seed = RunConfig.data_seed
        why = f"it uses whole splits, which no seed changes: data seed {data_seed}"
    note = f"was saved before --data-seed existed; {why}."
    return {**values, "data_seed": data_seed, "dataset_options": options}, note


def _normalise_keys(values: dict[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    given: dict[str, Any] = {}
    for key, value in values.items():
        name = option_name(key)
        if name not in FIELD_NAMES:
            hint = did_you_mean(name, FIELD_NAMES, n=1, cutoff=0.6)
            raise ConfigError(f"{source}: unknown option {key!r}.{hint} Known options: {', '.join(FIELD_NAMES)}.")
        if name in out:
            raise ConfigError(f"{source}: {given[name]!r} and {key!r} both set {name}; keep one.")
        out[name], given[name] = value, key
    return out


#: What a run's saved ``config.yaml`` records beside its options (the published teacher's file: name, SHA-256,
#: source); read back as a record, never as an option.
RECORDS = ("teacher_file",)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (or a packaged one by name, e.g. ``cifar100/kd``) as option dict (without the
    :data:`RECORDS` of a saved run)."""
    path = resolve_config_path(path)
    try:
        data = yaml_load.load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value, not {type(data).__name__}.")
    return _normalise_keys({k: v for k, v in data.items() if k not in RECORDS}, str(path))


def packaged_configs() -> list[str]:
    """Names of the configs shipped inside the package (usable as ``--config NAME``)."""
    root = resources.files("kdzoo") / "configs"
    names = []
    for group in root.iterdir():
        if group.is_dir() and group.name not in ("recipes", "bench"):
            names += [f"{group.name}/{p.name[:-5]}" for p in group.iterdir() if p.name.endswith(".yaml")]
    return sorted(names)


def resolve_config_path(path: str | Path) -> Path:
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    packaged = resources.files("kdzoo") / "configs" / f"{path}.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    raise ConfigError(
        f"Config file {str(path)!r} does not exist. Give a path to a YAML file or one of the "
        f"packaged configs: {', '.join(packaged_configs())}."
    )


def option_text(value: Any) -> str:
    """A run option's value as the header, the help and `kdzoo list` print it (``[30, 60]`` -> ``30 60``)."""
    if isinstance(value, list):
        return " ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def dataset_recipes() -> dict[str, dict[str, Any]]:
    """Every packaged dataset recipe, by dataset name."""
    folder = resources.files("kdzoo") / "configs" / "recipes"
    names = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return {name: dataset_recipe(name) for name in names}


def dataset_recipe(dataset: str) -> dict[str, Any]:
    """The packaged recipe for ``dataset`` (empty when the defaults apply unchanged)."""
    recipe = resources.files("kdzoo") / "configs" / "recipes" / f"{dataset}.yaml"
    return read_yaml(str(recipe)) if recipe.is_file() else {}


def scale_milestones(milestones: list[int], factor: float, epochs: int) -> list[int]:
    """``milestones`` for a run ``factor`` times as long, of ``epochs`` epochs: each at least 1 and at most
    ``epochs``, each once."""
    return sorted({min(max(1, round(m * factor)), epochs) for m in milestones})


def with_recipe(recipe: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` options over a dataset ``recipe``; the recipe's milestones (set for its own epochs) scale with
    the run's epochs, as the default ones do, unless ``given`` has milestones."""
    values = {**recipe, **given}
    if "milestones" in recipe and "milestones" not in given:
        recipe_epochs = recipe.get("epochs", RunConfig.epochs)
        epochs = values.get("epochs", RunConfig.epochs)
        values["milestones"] = scale_milestones(recipe["milestones"], epochs / recipe_epochs, epochs)
    return values


def recipe_values(cfg: RunConfig) -> dict[str, Any]:
    """The options of ``cfg`` that hold its dataset recipe's values (milestones as scaled to its epochs)."""
    recipe = dataset_recipe(cfg.dataset)
    scaled = with_recipe(recipe, {"epochs": cfg.epochs}).get("milestones")
    return {k: getattr(cfg, k) for k in recipe if getattr(cfg, k) == (scaled if k == "milestones" else recipe[k])}


def build_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Layer defaults < dataset recipe < config file < overrides, then validate."""
    file_values = read_yaml(config_file) if config_file else {}
    overrides = _normalise_keys(overrides or {}, "command line")
    dataset = overrides.get("dataset", file_values.get("dataset", RunConfig.dataset))
    values = with_recipe(dataset_recipe(dataset), {**file_values, **overrides})
    try:
        cfg = RunConfig(**values)
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise ConfigError(str(exc)) from None
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    """Check values that do not need models or data: every field against its declaration, then the rules that
    join fields (:data:`kdzoo.config_checks.RULES`); raises :class:`ConfigError`."""
    check_run_options(cfg)
