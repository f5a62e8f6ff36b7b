"""Data augmentation of image batches: random affine warps and pixel jitter.

One compiled call prepares the augmented rows of a chunk of training batches
(:func:`augment_chunk`).  Each batch draws from its own generator, seeded from
(run seed, epoch, batch index) by :func:`batch_state`, so a batch's augmented
images depend on nothing else: not on how the Python loop cut the epoch into
chunks, not on which thread prepared them, not on whether the run was resumed.

Geometry is one inverse affine map per image, output pixel (r, c) reading the
input at ``M @ (r, c) + offset`` with bilinear interpolation over a grid padded
with zeros -- what ``scipy.ndimage.affine_transform(image, M, offset, order=1,
mode="grid-constant", cval=0)`` computes, which the tests compare against.
Pixels are warped in the data's original units (standardization undone and
redone around it), so the zero padding is the black background of the images.
"""
import math

import numpy as np
from numba import njit

from engine.kernels.rng import next_u64, uniform

# entries of the settings vector cfg (N_CFG,) float64; 0 turns one off
CFG_SHIFT = 0          # max translation in pixels along each axis
CFG_ROTATION = 1       # max rotation in degrees, either way
CFG_SCALE = 2          # zoom factor uniform in [1 - scale, 1 + scale]
CFG_FLIP = 3           # probability of a horizontal flip
CFG_CROP_PADDING = 4   # random crop after zero padding = integer shift in [-p, p]
CFG_BRIGHTNESS = 5     # added to every pixel, uniform in [-b, b]
CFG_CONTRAST = 6       # factor around the image's mean, uniform in [1 - c, 1 + c]
CFG_NOISE = 7          # standard deviation of Gaussian noise added to each pixel
N_CFG = 8

# columns of the per-image draws (n, N_DRAW) float64
DRAW_M00 = 0           # inverse map: input (r, c) = M @ output (r, c) + offset
DRAW_M01 = 1
DRAW_M10 = 2
DRAW_M11 = 3
DRAW_OFF_R = 4
DRAW_OFF_C = 5
DRAW_CONTRAST = 6      # contrast factor (1: unchanged)
DRAW_BRIGHTNESS = 7    # brightness offset (0: unchanged)
N_DRAW = 8

_SALT = np.uint64(0xA0761D6478BD642F)   # keeps augmentation's streams apart from the other generators


@njit(cache=True, nogil=True)
def batch_state(seed, epoch, batch):
    """A fresh (2,) uint64 generator state for one batch, mixed from its three counters."""
    state = np.zeros(2, dtype=np.uint64)
    state[0] = np.uint64(seed) ^ _SALT
    state[0] = next_u64(state) ^ np.uint64(epoch)
    state[0] = next_u64(state) ^ np.uint64(batch)
    state[0] = next_u64(state)
    return state


@njit(cache=True, nogil=True)
def _normal(state):
    """A standard normal draw (Box-Muller on two uniforms)."""
    u1 = 1.0 - uniform(state)   # in (0, 1]: the log is finite
    u2 = uniform(state)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, nogil=True)
def draw_image(cfg, flip_allowed, height, width, state, out):
    """Draw one image's transformation into ``out`` (N_DRAW,) from ``state``.

    Forward map about the image centre: flip, rotate, zoom, then translate.
    ``out`` holds its inverse (what the warp reads).  Every setting draws its
    numbers whether or not it is on, so turning one on leaves this image's other draws unchanged."""
    u_shift_r, u_shift_c = uniform(state), uniform(state)
    u_rot, u_scale, u_flip = uniform(state), uniform(state), uniform(state)
    crop_r = next_u64(state)
    crop_c = next_u64(state)
    u_bright, u_contrast = uniform(state), uniform(state)
    shift = cfg[CFG_SHIFT]
    t_r = (2.0 * u_shift_r - 1.0) * shift
    t_c = (2.0 * u_shift_c - 1.0) * shift
    pad = int(cfg[CFG_CROP_PADDING])
    if pad > 0:
        t_r += float(crop_r % np.uint64(2 * pad + 1)) - pad
        t_c += float(crop_c % np.uint64(2 * pad + 1)) - pad
    theta = (2.0 * u_rot - 1.0) * cfg[CFG_ROTATION] * math.pi / 180.0
    zoom = 1.0 + (2.0 * u_scale - 1.0) * cfg[CFG_SCALE]
    flip = -1.0 if (flip_allowed and u_flip < cfg[CFG_FLIP]) else 1.0
    cos, sin = math.cos(theta), math.sin(theta)
    # inverse: in = F R(-theta) (out - centre - t) / zoom + centre, F = diag(1, flip)
    m00, m01 = cos / zoom, sin / zoom
    m10, m11 = flip * -sin / zoom, flip * cos / zoom
    c_r, c_c = (height - 1) / 2.0, (width - 1) / 2.0
    a_r, a_c = c_r + t_r, c_c + t_c
    out[DRAW_M00], out[DRAW_M01], out[DRAW_M10], out[DRAW_M11] = m00, m01, m10, m11
    out[DRAW_OFF_R] = c_r - (m00 * a_r + m01 * a_c)
    out[DRAW_OFF_C] = c_c - (m10 * a_r + m11 * a_c)
    out[DRAW_CONTRAST] = 1.0 + (2.0 * u_contrast - 1.0) * cfg[CFG_CONTRAST]
    out[DRAW_BRIGHTNESS] = (2.0 * u_bright - 1.0) * cfg[CFG_BRIGHTNESS]


@njit(cache=True, nogil=True)
def warp(src, draw, out):
    """Bilinear inverse-affine warp of one (H, W) image into ``out`` (H, W),
    reading zeros outside the input (scipy's mode "grid-constant", cval 0)."""
    height, width = src.shape
    m00, m01, m10, m11 = draw[DRAW_M00], draw[DRAW_M01], draw[DRAW_M10], draw[DRAW_M11]
    off_r, off_c = draw[DRAW_OFF_R], draw[DRAW_OFF_C]
    for r in range(height):
        y = m00 * r + off_r   # the input coordinates move by (m01, m11) per output column
        x = m10 * r + off_c
        for c in range(width):
            if y <= -1.0 or x <= -1.0 or y >= height or x >= width:
                out[r, c] = 0.0
            else:
                out[r, c] = _bilinear(src, y, x, height, width)
            y += m01
            x += m11


@njit(cache=True, nogil=True, inline="always")
def _bilinear(src, y, x, height, width):
    """src at (y, x), -1 < y < height and -1 < x < width, zero outside."""
    r0, c0 = int(y + 1.0) - 1, int(x + 1.0) - 1   # floor: y + 1 > 0, where int() truncates the same way
    fy, fx = y - r0, x - c0
    if r0 >= 0 and c0 >= 0 and r0 + 1 < height and c0 + 1 < width:   # inside: the four taps, no tests
        top = src[r0, c0] + fx * (src[r0, c0 + 1] - src[r0, c0])
        bottom = src[r0 + 1, c0] + fx * (src[r0 + 1, c0 + 1] - src[r0 + 1, c0])
        return top + fy * (bottom - top)
    acc = 0.0
    for dr in range(2):
        rr = r0 + dr
        if rr < 0 or rr >= height:
            continue
        wy = fy if dr else 1.0 - fy
        for dc in range(2):
            cc = c0 + dc
            if cc < 0 or cc >= width:
                continue
            acc += wy * (fx if dc else 1.0 - fx) * src[rr, cc]
    return acc


@njit(cache=True, nogil=True)
def warp_images(src, draws, out):
    """:func:`warp` of each image: src (n, H, W), draws (n, N_DRAW), out (n, H, W)."""
    for i in range(src.shape[0]):
        warp(src[i], draws[i], out[i])


@njit(cache=True, nogil=True)
def augment_chunk(x, y_int, order, starts, seed, epoch, first_batch, height, width,
                  mean, std, cfg, flip_allowed, out):
    """Augmented rows of batches first_batch.. of an epoch, in the epoch's order.

    x (N, H*W) standardized training inputs; y_int (N,) labels, or empty
    (nothing is then exempt from flipping); order the epoch's row order;
    starts (n+1,) the chunk's batch boundaries in order; mean, std (H*W,) the
    standardization; cfg (N_CFG,); flip_allowed (C,) uint8 per class.
    Writes out (starts[n] - starts[0], H*W): row k is order[starts[0] + k]
    augmented, standardized again like x."""
    src = np.empty((height, width))
    dst = np.empty((height, width))
    draw = np.empty(N_DRAW)
    noise = cfg[CFG_NOISE]
    inv_std = 1.0 / std
    base = starts[0]
    for b in range(starts.shape[0] - 1):
        state = batch_state(seed, epoch, first_batch + b)
        for k in range(starts[b], starts[b + 1]):
            row = order[k]
            p = 0
            for r in range(height):
                for c in range(width):
                    src[r, c] = x[row, p] * std[p] + mean[p]
                    p += 1
            allowed = True
            if y_int.shape[0] > 0:
                allowed = flip_allowed[y_int[row]] != 0
            draw_image(cfg, allowed, height, width, state, draw)
            warp(src, draw, dst)
            factor, bright = draw[DRAW_CONTRAST], draw[DRAW_BRIGHTNESS]
            centre = 0.0
            if factor != 1.0:
                centre = np.mean(dst)
            o = out[k - base]
            p = 0
            for r in range(height):
                for c in range(width):
                    o[p] = ((dst[r, c] - centre) * factor + centre + bright - mean[p]) * inv_std[p]
                    p += 1
            if noise > 0.0:
                for p in range(height * width):
                    o[p] += noise * _normal(state) * inv_std[p]
