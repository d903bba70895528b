"""Regressors that map a student feature map onto a teacher map's shape (FitNet, AB, ...)."""

from __future__ import annotations

from torch import Tensor, nn


class ConvReg(nn.Module):
    """RepDistiller's ``ConvReg`` (``models/util.py``): conv (+ BN, + ReLU) from shape ``s`` to ``t``.

    With (C, H, W) shapes: H_s = 2 H_t -> 3x3 conv, stride 2; 2 H_s = H_t -> 4x4 transposed conv,
    stride 2; H_s >= H_t -> conv with kernel (1 + H_s - H_t, 1 + W_s - W_t) (1x1 for equal sizes).
    A smaller student map by another factor (pairs across families, e.g. a timm network against a CIFAR
    ResNet; RepDistiller refuses them) is first resized to the teacher's size by bilinear interpolation,
    then mapped by a 1x1 conv.
    """

    def __init__(self, s_shape: tuple[int, ...], t_shape: tuple[int, ...], use_relu: bool = True):
        super().__init__()
        cs, hs, ws = s_shape[-3:]
        ct, ht, wt = t_shape[-3:]
        if hs == 2 * ht:
            self.conv = nn.Conv2d(cs, ct, kernel_size=3, stride=2, padding=1)
        elif 2 * hs == ht:
            self.conv = nn.ConvTranspose2d(cs, ct, kernel_size=4, stride=2, padding=1)
        elif hs >= ht and ws >= wt:
            self.conv = nn.Conv2d(cs, ct, kernel_size=(1 + hs - ht, 1 + ws - wt))
        else:
            self.conv = nn.Sequential(nn.Upsample(size=(ht, wt), mode="bilinear", align_corners=False),
                                      nn.Conv2d(cs, ct, kernel_size=1))
        self.bn = nn.BatchNorm2d(ct)
        self.use_relu = use_relu
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.use_relu else x
