"""Batched augmentation: equal to a naive per-image reference, flips where asked, deterministic; the strong
view (MLKD's second view of each training image) and its cutout."""

import torch
import torch.nn.functional as F

from kdzoo.data import BatchAugment, build_data, crop_flip, normalize
from kdzoo.data.augment import cutout


def uint8_images(n=16, c=3, h=32, w=32, seed=0):
    """A fixed random batch of ``n`` uint8 images (as the datasets store them)."""
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def naive(x, top, left, flip, padding):
    out = []
    for img, t, le, f in zip(x, top.tolist(), left.tolist(), flip.tolist(), strict=True):
        crop = F.pad(img, (padding,) * 4)[:, t : t + img.shape[1], le : le + img.shape[2]]
        out.append(crop.flip(-1) if f else crop)
    return torch.stack(out)


def test_augment_keeps_shape_and_dtype():
    gen = torch.Generator().manual_seed(0)
    for x in (uint8_images(), uint8_images().float() / 255, uint8_images(n=5, c=1, h=20, w=24)):
        y = BatchAugment()(x, gen)
        assert y.shape == x.shape and y.dtype == x.dtype


def test_crop_and_flip_equal_a_per_image_reference():
    x = uint8_images(n=32, h=12, w=10)
    top, left, flip = BatchAugment(padding=4).sample(32, torch.Generator().manual_seed(1))
    assert flip.any() and not flip.all() and top.min() >= 0 and top.max() <= 8
    assert torch.equal(crop_flip(x, top, left, flip, 4), naive(x, top, left, flip, 4))
    # the extreme offsets bring in the zero padding
    corner = crop_flip(x, torch.zeros(32, dtype=torch.long), torch.zeros(32, dtype=torch.long),
                       torch.zeros(32, dtype=torch.bool), 4)
    assert (corner[:, :, :4, :] == 0).all() and torch.equal(corner[:, :, 4:, 4:], x[:, :, :-4, :-4])


def test_flip_is_applied_exactly_where_the_mask_says():
    x = uint8_images(n=6)
    zero = torch.zeros(6, dtype=torch.long)
    mask = torch.tensor([True, False, False, True, True, False])
    for padding, offset in ((0, zero), (4, zero + 4)):  # padding 4 with centred offsets = no crop shift
        y = crop_flip(x, offset, offset, mask, padding)
        assert torch.equal(y[mask], x[mask].flip(-1)) and torch.equal(y[~mask], x[~mask])


def test_no_flip_option_only_crops():
    _, _, flip = BatchAugment(flip=False).sample(64, torch.Generator().manual_seed(0))
    assert not flip.any()


def test_normalize_inverts():
    x = uint8_images(c=3)
    mean, std = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
    y = normalize(x, mean, std)
    assert y.dtype == torch.float32
    back = y * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    torch.testing.assert_close(back, x.float() / 255)
    torch.testing.assert_close(normalize(x.float() / 255, mean, std), y)  # float input taken as [0, 1]


def test_augment_is_deterministic_for_a_generator_seed():
    x = uint8_images()
    a = BatchAugment()(x, torch.Generator().manual_seed(7))
    b = BatchAugment()(x, torch.Generator().manual_seed(7))
    c = BatchAugment()(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augment_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    BatchAugment()(uint8_images(), torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state())


# -------------------------------------------------------------------------------------- strong view

def synthetic(**kwargs):
    return build_data("synthetic", batch_size=8, num_train=16, num_test=8, seed=3, **kwargs)


def test_strong_view_is_reproducible_and_differs_from_the_weak_view():
    first = next(synthetic(strong_view=True).train.epoch(1))
    again = next(synthetic(strong_view=True).train.epoch(1))
    plain = next(synthetic().train.epoch(1))
    assert first.strong_images.shape == first.images.shape and first.strong_images.dtype == torch.float32
    assert torch.equal(first.strong_images, again.strong_images)
    assert torch.equal(first.images, plain.images)  # the weak view is unchanged by adding the strong one
    assert plain.strong_images is None
    assert not torch.allclose(first.strong_images, first.images)
    other_epoch = next(synthetic(strong_view=True).train.epoch(2))
    assert not torch.equal(other_epoch.strong_images, first.strong_images)


def test_test_batches_have_no_strong_view():
    assert next(synthetic(strong_view=True).test.epoch(0)).strong_images is None


def test_cutout_zeroes_one_clipped_square_per_image():
    images = torch.ones(64, 2, 8, 8)
    out = cutout(images, 4, torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert torch.all(zeros >= 4) and torch.all(zeros <= 16) and (zeros == 16).any()  # 2x2 in a corner at least
    assert torch.equal(out[:, 0] == 0, out[:, 1] == 0)  # every channel
    rows = (out[:, 0] == 0).any(dim=2).sum(dim=1)
    assert torch.all(rows <= 4)
