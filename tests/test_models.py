"""Model zoo, over the model registry (``list_models()``): every model's contract (classes and input channels, other
input sizes, backward through the feature taps, the map its classifier pools, its metadata); RepDistiller state-dict
compatibility of the RepDistiller zoo (expected layouts in tests/data); tap values per family; the torchvision
adapter; the registry."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import randn
from kdzoo.errors import ConfigError, KdzooError, UnknownNameError
from kdzoo.models import create_model, extract, list_models, model_info
from kdzoo.models.layers import channel_shuffle

#: What each of RepDistiller's CIFAR models must look like (state-dict layout, parameter count, feature shapes);
#: which models to test comes from the registry, not from this file.
GOLDEN = json.loads((Path(__file__).parent / "data" / "repdistiller_state_dicts.json").read_text())["models"]
ZOO = list_models()
FAMILY = {n: model_info(n)["family"] for n in ZOO}
#: The registered RepDistiller zoo (its CIFAR models, taps and helpers) and the torchvision adapters.
REPDISTILLER = [n for n in ZOO if model_info(n)["source"] == "repdistiller"]
TORCHVISION = [n for n in ZOO if model_info(n)["source"] == "torchvision"]
WITH_PREACT = [n for n in REPDISTILLER if FAMILY[n] != "mobilenet"]  # MobileNetV2 ignores preact


@functools.cache
def _prototype(name: str, num_classes: int = 100, in_channels: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes=num_classes, in_channels=in_channels)


@pytest.fixture(scope="module", autouse=True)
def _free_model_caches():
    yield
    for cached in (_prototype, _eval_model, eval_run):
        cached.cache_clear()


def fresh(name: str, **kw) -> nn.Module:
    """A private copy of a cached model (construction of the big ones is the slow part)."""
    return copy.deepcopy(_prototype(name, **kw))


def batch(h: int = 32, c: int = 3, n: int = 2, seed: int = 0) -> torch.Tensor:
    """A fixed random batch of ``n`` ``c``-channel ``h`` x ``h`` images."""
    return randn(n, c, h, h, seed=seed)


def randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN affine parameters and running stats, so eval-mode BN is not an identity."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def _tap_sources(model: nn.Module, name: str, preact: bool):
    """(module, function of its output) giving each spatial tap at the moment it is produced."""
    fam = FAMILY[name]
    ident = lambda o: o  # noqa: E731
    stage_out = (lambda o: o[1]) if preact else ident  # stages return (out, pre) when preact
    if fam == "resnet":
        return [(model.relu, ident)] + [(s, stage_out) for s in (model.layer1, model.layer2, model.layer3)]
    if fam == "resnet_bottleneck" or fam == "shufflenet":
        stages = [model.layer1, model.layer2, model.layer3] + ([model.layer4] if fam == "resnet_bottleneck" else [])
        return [(model.bn1, F.relu)] + [(s, stage_out) for s in stages]
    if fam == "wrn":
        if preact:
            return [(model.conv1, ident), (model.block2, stage_out), (model.block3, stage_out), (model.bn1, ident)]
        return [(model.conv1, ident), (model.block1, ident), (model.block2, ident), (model.block3, ident)]
    if fam == "vgg":
        blocks = [getattr(model, f"block{i}") for i in range(1, 5)]
        return [(model.block0, F.relu)] + [(b, ident if preact else F.relu) for b in blocks]
    if fam == "mobilenet":
        return [(model.conv1, ident)] + [(model.blocks[i], ident) for i in (1, 2, 4, 6)]
    raise AssertionError(fam)


def _classifier(model):
    for attr in ("fc", "linear", "classifier"):
        if hasattr(model, attr):
            return getattr(model, attr)
    raise AssertionError


@functools.cache
def _eval_model(name: str) -> nn.Module:
    """Shared eval-mode model with random BN statistics; tests must not modify it."""
    return randomize_bn(fresh(name)).eval()


@functools.cache
def eval_run(name: str, preact: bool):
    """``(model, feats, logits, seen)`` for ``batch()``; ``seen`` holds a copy of each tap taken by
    a hook at the moment it was produced (the classifier input for the pooled vector)."""
    model = _eval_model(name)
    seen = []

    def grab(fn):
        return lambda mod, inp, out: seen.append(fn(out).clone())

    handles = [m.register_forward_hook(grab(fn)) for m, fn in _tap_sources(model, name, preact)]
    handles.append(_classifier(model).register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].clone())))
    try:
        with torch.no_grad():
            feats, logits = model(batch(), is_feat=True, preact=preact)
    finally:
        for h in handles:
            h.remove()
    return model, feats, logits, seen


# ---------------------------------------------------------------------------------------------
# RepDistiller compatibility (golden file)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", REPDISTILLER)
def test_state_dict_matches_repdistiller(name):
    model = fresh(name)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == GOLDEN[name]["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == GOLDEN[name]["n_params"]

    # a checkpoint with the golden layout loads strictly, and the values land where expected
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(*shape, generator=g))
             for k, shape in GOLDEN[name]["state_dict"]}
    model.load_state_dict(state, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k].to(v.dtype)), k


@pytest.mark.parametrize("name", REPDISTILLER)
@pytest.mark.parametrize("preact", [False, True])
def test_feature_shapes_match_repdistiller(name, preact):
    model, feats, logits, _ = eval_run(name, preact)
    assert isinstance(feats, list)
    assert [list(f.shape) for f in feats] == GOLDEN[name]["feat_shapes"]
    assert logits.shape == (2, 100)
    if not preact:
        with torch.no_grad():
            assert torch.equal(model(batch()), logits)  # is_feat=False returns the same logits


@pytest.mark.parametrize("name", ZOO)
def test_num_classes_and_in_channels(name, capsys):
    model = create_model(name, num_classes=10, in_channels=1).eval()
    assert capsys.readouterr().out == ""  # nothing printed on construction
    with torch.no_grad():
        assert model(batch(c=1, n=1)).shape == (1, 10)
    # in_channels changes only the stem conv
    ref = fresh(name).state_dict()
    diff = [k for k, v in model.state_dict().items() if v.shape != ref[k].shape]
    first_conv = next(k for k, v in ref.items() if v.dim() == 4)
    head = {k for k, v in ref.items() if v.shape[:1] == (100,)}
    assert list(model.state_dict()) == list(ref)
    assert set(diff) - head == {first_conv}


@pytest.mark.parametrize("name", REPDISTILLER)  # the torchvision adapters pass options on to torchvision's builders
def test_unknown_option_rejected(name):
    with pytest.raises(ConfigError, match="unexpected option"):
        create_model(name, num_classes=10, drop_rate=0.3)


# ---------------------------------------------------------------------------------------------
# Feature taps: values, not only shapes
# ---------------------------------------------------------------------------------------------

def _post_from_pre(name: str, i: int, pre: torch.Tensor) -> torch.Tensor:
    """The preact=False stage tap as a function of the preact=True tap (non-WRN models)."""
    post = F.relu(pre)
    return channel_shuffle(post, 2) if name == "ShuffleV2" else post


@pytest.mark.parametrize("name", [n for n in WITH_PREACT if FAMILY[n] != "wrn"])
def test_preact_taps_are_pre_relu(name):
    _, post, _, _ = eval_run(name, False)
    _, pre, _, _ = eval_run(name, True)
    assert torch.equal(pre[0], post[0])  # stem unchanged (VGG: stays post-ReLU)
    assert torch.equal(pre[-1], post[-1])
    for i in range(1, len(post) - 1):
        assert (pre[i] < 0).any(), f"tap {i} has no negative values: not pre-ReLU"
        assert torch.allclose(_post_from_pre(name, i, pre[i]), post[i], atol=1e-6), i


def test_mobilenetv2_ignores_preact():
    _, a, _, _ = eval_run("MobileNetV2", False)
    _, b, _, _ = eval_run("MobileNetV2", True)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert any((f < 0).any() for f in a[1:-1])  # linear bottleneck outputs


WRNS = [n for n in REPDISTILLER if FAMILY[n] == "wrn"]


def _wrn_next_bns(model):
    return [model.block2.layer[0].bn1, model.block3.layer[0].bn1, model.bn1]


@pytest.mark.parametrize("name", WRNS)
def test_wrn_taps_eval(name):
    model, raw, logits, _ = eval_run(name, False)
    _, pre, logits_pre, _ = eval_run(name, True)
    x = batch()
    with torch.no_grad():
        assert torch.equal(raw[0], model.conv1(x))  # raw stem conv: no BN, no ReLU
        assert torch.equal(raw[1], model.block1(raw[0]))  # raw block outputs
        assert torch.equal(pre[0], raw[0]) and torch.equal(pre[4], raw[4]) and torch.equal(logits, logits_pre)
        for i, bn in enumerate(_wrn_next_bns(model), start=1):
            assert torch.allclose(pre[i], bn(raw[i]), atol=1e-6)  # RepDistiller's formula
            assert (pre[i] < 0).any()


@pytest.mark.parametrize("name", WRNS)
def test_wrn_preact_train_mode_runs_each_bn_once(name):
    model = fresh(name).train()
    reference = copy.deepcopy(model)
    x = batch(n=4)
    pre, _ = model(x, is_feat=True, preact=True)
    raw, _ = reference(x, is_feat=True, preact=False)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(int(m.num_batches_tracked) == 1 for m in bns)
    # running stats updated exactly as by a plain forward
    for (k, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    # RepDistiller's taps (the BN applied again to the raw map, train mode = batch statistics)
    with torch.no_grad():
        for i, bn in enumerate(_wrn_next_bns(reference), start=1):
            assert torch.allclose(pre[i], bn(raw[i]), atol=1e-5)


@pytest.mark.parametrize("name", REPDISTILLER)
@pytest.mark.parametrize("preact", [False, True])
def test_returned_taps_are_not_modified_later(name, preact):
    """Each tap equals a copy taken by a hook when it was produced: no later in-place op changed it."""
    _, feats, _, seen = eval_run(name, preact)
    assert len(seen) == len(feats)
    for i, (f, s) in enumerate(zip(feats, seen, strict=True)):
        assert torch.equal(f, s), f"tap {i} differs from its value when produced"


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("preact", [False, True])
def test_backward_through_taps(name, preact):
    """Train-mode forward + backward through every tap: no in-place op breaks autograd."""
    model = fresh(name).train()
    feats, logits = model(batch(h=16), is_feat=True, preact=preact)
    (logits.sum() + sum(f.square().mean() for f in feats)).backward()
    assert all(p.grad is not None for p in model.parameters())


def _pool_input(model, name, feats):
    """The map RepDistiller's fixed pool is applied to, and that pool."""
    fam = FAMILY[name]
    if fam == "resnet":
        return feats[-2], lambda t: F.avg_pool2d(t, 8)
    if fam == "wrn":
        return F.relu(model.bn1(feats[-2])), lambda t: F.avg_pool2d(t, 8)
    if name == "ShuffleV1":
        return feats[-2], lambda t: F.avg_pool2d(t, 4)
    if name == "ShuffleV2":
        return F.relu(model.bn2(model.conv2(feats[-2]))), lambda t: F.avg_pool2d(t, 4)
    if name == "MobileNetV2":
        return model.conv2(feats[-2]), nn.AvgPool2d(2, ceil_mode=True)
    return None, None  # ResNet50 and VGG already pool adaptively in RepDistiller


@pytest.mark.parametrize("name", [n for n in REPDISTILLER if FAMILY[n] not in ("resnet_bottleneck", "vgg")])
def test_adaptive_pool_equals_fixed_pool_at_32(name):
    model, feats, _, _ = eval_run(name, False)
    with torch.no_grad():
        fmap, pool = _pool_input(model, name, feats)
        assert torch.allclose(pool(fmap).flatten(1), feats[-1], atol=1e-6)


@pytest.mark.parametrize("name", ZOO)
def test_other_input_sizes(name):
    model = fresh(name).eval()
    with torch.no_grad():
        for h in (20, 48):
            feats, logits = model(batch(h=h, n=1), is_feat=True)
            assert logits.shape == (1, 100) and feats[-1].dim() == 2


def test_vgg_pool3_only_at_64():
    model = fresh("vgg8").eval()
    with torch.no_grad():
        f32, _ = model(batch(h=32, n=1), is_feat=True)
        f64, _ = model(batch(h=64, n=1), is_feat=True)
    assert f32[3].shape[-1] == f32[4].shape[-1] == 4  # pool3 skipped at 32x32
    assert f64[3].shape[-1] == 8 and f64[4].shape[-1] == 4  # pool3 applied at 64x64


# ---------------------------------------------------------------------------------------------
# get_feat_modules / get_bn_before_relu / init
# ---------------------------------------------------------------------------------------------

N_FEAT_MODULES = {"resnet": 6, "resnet_bottleneck": 6, "wrn": 4, "vgg": 10, "mobilenet": 2, "shufflenet": 5}


@pytest.mark.parametrize("name", REPDISTILLER)
def test_feat_modules_and_bn_before_relu(name):
    model = fresh(name)
    fm = model.get_feat_modules()
    assert isinstance(fm, nn.ModuleList) and len(fm) == N_FEAT_MODULES[FAMILY[name]]
    own = {id(m) for m in model.modules()}
    assert all(id(m) in own for m in fm)
    if FAMILY[name] == "shufflenet":
        with pytest.raises(KdzooError, match="get_bn_before_relu"):
            model.get_bn_before_relu()
        return
    bns = model.get_bn_before_relu()
    assert all(isinstance(b, nn.BatchNorm2d) and id(b) in own for b in bns)
    _, feats, _, _ = eval_run(name, True)
    # one BN per stage tap, with the tap's channel count (WRN: the next stage's input BN)
    assert [b.num_features for b in bns] == [f.shape[1] for f in feats[-1 - len(bns):-1]]


@pytest.mark.parametrize("name", [n for n in REPDISTILLER if FAMILY[n] != "shufflenet"])  # RepDistiller's init
def test_init(name):
    model = fresh(name)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.weight.numel() > 20000:
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            assert abs(m.weight.std().item() / (2.0 / n) ** 0.5 - 1) < 0.1
            assert m.bias is None or not m.bias.any()
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and not m.bias.any()
    head = _classifier(model)
    head = head[0] if isinstance(head, nn.Sequential) else head
    if FAMILY[name] in ("vgg", "mobilenet"):
        assert abs(head.weight.std().item() - 0.01) < 0.002 and not head.bias.any()
    if FAMILY[name] == "wrn":
        assert not head.bias.any()


# ---------------------------------------------------------------------------------------------
# head map: the map the classifier pools
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in ZOO if n not in ("tv_resnet34", "tv_resnet50")])  # (left out for time)
def test_head_map_pools_into_the_classifier(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    with torch.no_grad():
        f = extract(model, torch.randn(2, 3, 32, 32))
        assert torch.allclose(f.head_map.mean(dim=(2, 3)), f.pooled, atol=1e-5)
        assert torch.allclose(model.get_classifier()(f.pooled), f.logits, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# torchvision adapter
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_adapter_features(name):
    import torchvision

    model = create_model(name, num_classes=7).eval()
    builder = getattr(torchvision.models, name[3:])
    tv = builder(weights=None, num_classes=7)
    # state-dict keys are torchvision's own: its weights load straight into the adapter
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [(k, v.shape) for k, v in tv.state_dict().items()]
    model.load_state_dict(randomize_bn(tv).state_dict(), strict=True)
    tv.eval()
    for h in (32, 64):
        x = batch(h=h, n=1)
        with torch.no_grad():
            feats, logits = model(x, is_feat=True)
            assert torch.allclose(logits, tv(x), atol=1e-5)  # same function as the torchvision model
            assert torch.equal(model(x), logits)
        assert logits.shape == (1, 7)
        assert len(feats) == 6  # stem, 4 stages, pooled
        assert all(f.dim() == 4 for f in feats[:-1]) and feats[-1].dim() == 2
        sizes = [f.shape[-1] for f in feats[:-1]]
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] == h // 32
        assert sizes[0] == h // (4 if "resnet" in name else 2)
        assert feats[-1].shape[1] == (model.fc.in_features if "resnet" in name else 1280)


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_adapter_preact_and_helpers(name):
    model = randomize_bn(create_model(name, num_classes=5, in_channels=1)).eval()
    x = batch(h=64, c=1, n=1)
    with torch.no_grad():
        post, logits = model(x, is_feat=True, preact=False)
        pre, logits_pre = model(x, is_feat=True, preact=True)
    assert logits.shape == (1, 5) and torch.allclose(logits, logits_pre, atol=1e-5)
    for a, b in zip(pre[1:-1], post[1:-1], strict=True):
        if "resnet" in name:  # pre-ReLU residual sums
            assert (a < 0).any() and torch.allclose(F.relu(a), b, atol=1e-5)
        else:  # MobileNetV2: preact ignored
            assert torch.equal(a, b)
    assert isinstance(model.get_feat_modules(), nn.ModuleList)
    bns = model.get_bn_before_relu()
    assert [b.num_features for b in bns] == [f.shape[1] for f in post[1:-1]]
    model.train()
    feats, logits = model(batch(h=32, c=1), is_feat=True, preact=True)
    (logits.sum() + sum(f.mean() for f in feats)).backward()


def test_torchvision_adapter_never_downloads():
    with pytest.raises(ConfigError, match="weights=None"):
        create_model("tv_resnet18", weights="IMAGENET1K_V1")


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------

def test_every_repdistiller_model_has_an_expected_layout():
    missing = sorted(set(REPDISTILLER) - set(GOLDEN))
    assert not missing, f"no expected layout for {missing}: add it to tests/data/repdistiller_state_dicts.json"
    stale = sorted(set(GOLDEN) - set(REPDISTILLER))
    assert not stale, f"expected layouts for models not registered as RepDistiller's: {stale}"


@pytest.mark.parametrize("name", ZOO)
def test_every_model_declares_its_family_lr_and_source(name):
    info = model_info(name)
    assert info["family"] and info["source"] and isinstance(info["lr"], float) and info["lr"] > 0


def test_registry():
    names = list_models()
    assert set(GOLDEN) | {"tv_resnet18", "tv_resnet34", "tv_resnet50", "tv_mobilenet_v2"} <= set(names)
    assert len(GOLDEN) == 22
    for n in GOLDEN:
        assert model_info(n)["lr"] == (0.01 if n in ("MobileNetV2", "ShuffleV1", "ShuffleV2") else 0.05)
        assert model_info(n)["source"] == "repdistiller"
    for n in TORCHVISION:
        assert model_info(n)["family"] == "torchvision" and model_info(n)["source"] == "torchvision"
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet32x4'"):
        create_model("resnet32x5")


def test_extract_api():
    out = extract(fresh("resnet8").eval(), batch(), preact=True)
    assert out.logits.shape == (2, 100) and len(out.stages) == 3 and out.pooled.shape == (2, 64)
