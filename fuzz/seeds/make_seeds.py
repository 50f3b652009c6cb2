#!/usr/bin/env python3
"""Writes the hand-made seeds in fuzz/seeds/<target>/.

Each seed is a case written out by hand below and encoded the way
`arbitrary` 1.x decodes it (libFuzzer's `fuzz_target!(|c: Case| ...)`):
bool = 1 byte (low bit), u8/i8 = 1 byte, wider ints little-endian, an enum
variant k of N = a u32 with (x * N) >> 32 == k, Vec = each element prefixed
by a 0x01 "more" byte and closed by 0x00, Option = bool then value.
The variant orders mirror fuzz/src/{common,layers,model,idx}.rs; the
regression test replays every seed and prints its decoded `Debug`.

Run from the repository root: python3 fuzz/seeds/make_seeds.py
"""
import gzip
import io
import os
import struct


def enum(k, n):
    x = -(-(k << 32) // n)  # ceil(k * 2^32 / n)
    return struct.pack("<I", x)


def vec(items):
    return b"".join(b"\x01" + i for i in items) + b"\x00"


def u8(v):
    return bytes([v & 0xFF])


def boolean(v):
    return b"\x01" if v else b"\x00"


# ---- common.rs -------------------------------------------------------------
def small(k):  # Val::Small(k) = k / 8
    return enum(0, 10) + struct.pack("<b", k)


def label(k):
    return enum(1, 10) + u8(k)


def zero(neg=False):
    return enum(2, 10) + boolean(neg)


ONE = enum(3, 10)


def big(neg=False):
    return enum(4, 10) + boolean(neg)


def vmax(neg=False):
    return enum(5, 10) + boolean(neg)


def subnormal(neg=False):
    return enum(6, 10) + boolean(neg)


def inf(neg=False):
    return enum(7, 10) + boolean(neg)


NAN = enum(8, 10)

STANDARD, FORTRAN, STRIDED, FLIPPED = (enum(k, 4) for k in range(4))


def tensor(dims, vals, layout=STANDARD):
    return vec([u8(d) for d in dims]) + vec(vals) + layout


# ---- layers.rs -------------------------------------------------------------
ADD, MUL, SIGMOID, RELU = (enum(k, 7) for k in range(4))
SOFTMAX_WITH_LOSS, MSE = enum(5, 7), enum(6, 7)


def affine(rows, cols, w, b_len, b, fortran=False):
    return enum(4, 7) + u8(rows) + u8(cols) + vec(w) + u8(b_len) + vec(b) + boolean(fortran)


def forward(*ts):
    return enum(0, 6) + vec(list(ts))


def backward(t):
    return enum(1, 6) + t


def backward_twice(t):
    return enum(2, 6) + t


def softmax(t):
    return enum(3, 6) + t


def cross_entropy(y, t):
    return enum(4, 6) + y + t


def layers_case(f64, kind, ops):
    return boolean(f64) + kind + vec(ops)


SCALAR_ONE = tensor([], [ONE])

LAYERS = {
    # The tutorial's worked example piece: Mul forward/backward on scalars.
    "mul-scalars": layers_case(True, MUL, [
        forward(tensor([], [small(-8)]), tensor([], [small(24)])),
        backward_twice(tensor([], [small(8)])),
    ]),
    # Sigmoid on the hostile values, then backward, in f32.
    "sigmoid-hostile-f32": layers_case(False, SIGMOID, [
        forward(tensor([2, 4], [NAN, inf(), inf(True), big(), big(True),
                                subnormal(), vmax(True), zero(True)])),
        backward(tensor([2, 4], [small(3)])),
    ]),
    # Affine 3x2 on a column-major (2, 3) batch, backward twice.
    "affine-batch-fortran": layers_case(True, affine(3, 2, [small(k) for k in range(-3, 3)], 2,
                                                     [small(4), small(-4)]), [
        forward(tensor([2, 3], [small(k) for k in range(6)], FORTRAN)),
        backward_twice(tensor([2, 2], [small(1), small(-2), small(5)])),
    ]),
    # Softmax-with-loss: class indices, then a failed forward (label out of
    # range), then backward, which must not see the stale cache.
    "softmax-loss-stale": layers_case(True, SOFTMAX_WITH_LOSS, [
        forward(tensor([2, 3], [small(8), big(), small(-8)]), tensor([2], [label(1), label(0)])),
        backward(SCALAR_ONE),
        forward(tensor([2, 3], [small(1)]), tensor([2], [label(3), label(0)])),
        backward(SCALAR_ONE),
    ]),
    # One-hot labels for a 1-D score vector, strided; and the free functions.
    "softmax-loss-onehot-1d": layers_case(False, SOFTMAX_WITH_LOSS, [
        forward(tensor([3], [big(True), zero(), big()], FLIPPED),
                tensor([3], [zero(), zero(), ONE], STRIDED)),
        backward(SCALAR_ONE),
        softmax(tensor([2, 3], [vmax(), vmax(True), small(1)], FORTRAN)),
        cross_entropy(tensor([2, 2], [ONE, zero(), small(4)]), tensor([2], [label(0), label(1)])),
    ]),
    # Mismatched and zero-sized shapes.
    "add-mismatch-and-empty": layers_case(True, ADD, [
        forward(tensor([2, 3], [ONE]), tensor([3, 2], [ONE])),
        backward(tensor([2, 3], [ONE])),
        forward(tensor([0, 3], []), tensor([0, 3], [])),
        backward(tensor([0, 3], [])),
    ]),
}


# ---- model.rs --------------------------------------------------------------
def batch(n, vals, layout=STANDARD):
    return enum(0, 3) + u8(n) + vec(vals) + layout


def indices(ks):
    return enum(0, 3) + vec([u8(k) for k in ks])


def onehot(hot, corrupt=None):
    c = boolean(False) if corrupt is None else boolean(True) + u8(corrupt[0]) + corrupt[1]
    return enum(1, 3) + vec([u8(k) for k in hot]) + c


def loss(x, t):
    return enum(0, 6) + x + t


def gradient(x, t):
    return enum(1, 6) + x + t


def accuracy(x, t):
    return enum(2, 6) + x + t


def mbackward(t):
    return enum(4, 6) + t


def sgd(lr):
    return enum(5, 6) + lr


def model_case(f64, inp, hidden, out, sigmoid, seed, ops):
    return (boolean(f64) + u8(inp) + vec([u8(h) for h in hidden]) + u8(out) + boolean(sigmoid)
            + struct.pack("<Q", seed) + vec(ops))


MODEL = {
    # A 4-3-2 ReLU net: loss, gradient, accuracy and an SGD step.
    "relu-4-3-2": model_case(True, 4, [3], 2, False, 7, [
        loss(batch(3, [small(k) for k in range(-5, 7)]), indices([0, 1, 1])),
        gradient(batch(3, [small(k) for k in range(-5, 7)]), onehot([1, 0, 1])),
        sgd(small(1)),
        accuracy(batch(3, [small(k) for k in range(-5, 7)]), indices([1, 1, 0])),
    ]),
    # Sigmoid net in f32; labels out of range, wrong length, a corrupt
    # one-hot row, backward before a ready forward, SGD before any gradient.
    "sigmoid-bad-labels-f32": model_case(False, 3, [2, 2], 3, True, 1, [
        sgd(small(1)),
        loss(batch(2, [big(), big(True), small(3)]), indices([0, 10])),
        mbackward(SCALAR_ONE),
        loss(batch(2, [small(3)]), indices([0])),
        gradient(batch(2, [small(3)], FLIPPED), onehot([2, 1], (4, small(4)))),
        accuracy(batch(0, []), indices([])),
    ]),
    # A zero hidden size: Mlp::new must refuse it.
    "zero-hidden": model_case(True, 2, [0], 2, False, 0, []),
}


# ---- check.rs -------------------------------------------------------------
C_SIGMOID, C_RELU, C_ADD, C_MUL = (enum(k, 9) for k in range(4))
C_SOFTMAX_WITH_LOSS, C_MSE = enum(5, 9), enum(6, 9)


def c_affine(rows, cols, w, b):
    return enum(4, 9) + u8(rows) + u8(cols) + vec(w) + vec(b)


def probe(w, bug=None):
    """bug = (in_dw, at, kind) with kind one of the BUG_* encodings."""
    b = boolean(False) if bug is None else boolean(True) + boolean(bug[0]) + u8(bug[1]) + bug[2]
    return enum(8, 9) + vec(w) + b


BUG_NAN = enum(0, 4)


def bug_inf(neg=False):
    return enum(1, 4) + boolean(neg)


def bug_off(v):
    return enum(2, 4) + v


BUG_NAN_FORWARD = enum(3, 4)


def some(v):
    return boolean(True) + v


NONE = boolean(False)


def cfg(h=NONE, atol=NONE, rtol=NONE, seed=0, strict=False, kink_share=NONE, mode=0,
        fast_threshold=NONE, fast_directions=NONE, contracts=True, f32_ulps=NONE,
        worst=5, invariant=NONE):
    return (h + atol + rtol + u8(seed) + boolean(strict) + kink_share + u8(mode)
            + fast_threshold + fast_directions + boolean(contracts) + f32_ulps + u8(worst)
            + invariant)


def check_case(f32, layer, config, inputs):
    return boolean(f32) + layer + config + vec(inputs)


FULL = 1
CHECK = {
    # NaN planted in dx of a user layer: must fail and say NaN.
    "probe-nan-dx": check_case(False, probe([small(3)], (False, 4, BUG_NAN)), cfg(mode=FULL),
                               [tensor([2, 3], [small(k) for k in range(-3, 3)])]),
    # -inf planted in dw, fast mode with 3 directions.
    "probe-inf-dw-fast": check_case(False, probe([small(-2)], (True, 1, bug_inf(True))),
                                    cfg(mode=5), [tensor([4], [small(5), small(-7)])]),
    # One element off by 1: a full check with default tolerances must fail.
    "probe-off-by-one": check_case(False, probe([small(1)], (False, 2, bug_off(ONE))),
                                   cfg(mode=FULL), [tensor([3], [small(9), small(-4)])]),
    # A correct user layer passes.
    "probe-correct": check_case(False, probe([small(2), small(-6)]), cfg(mode=FULL),
                                [tensor([2, 2], [small(4), small(-12), small(1)])]),
    # Mixed precision on Sigmoid.
    "sigmoid-f32": check_case(True, C_SIGMOID, cfg(), [tensor([3], [small(-20), zero(), small(16)])]),
    # Invalid configurations: h = 0, negative atol, NaN rtol.
    "affine-h-zero": check_case(False, c_affine(2, 2, [small(3)], [small(1)]), cfg(h=some(zero())),
                                [tensor([1, 2], [small(1)])]),
    "softmax-negative-atol": check_case(False, C_SOFTMAX_WITH_LOSS,
                                        cfg(atol=some(small(-1)), rtol=some(NAN)),
                                        [tensor([2, 3], [small(5), small(-3)]),
                                         tensor([2], [label(2), label(0)])]),
    # ReLU at its kink, strict, with a rows-sum invariant.
    "relu-kink-strict": check_case(False, C_RELU, cfg(strict=True, invariant=some(u8(0))),
                                   [tensor([2, 2], [zero(), small(3), zero(True), small(-3)])]),
}


# ---- idx.rs ----------------------------------------------------------------
def gz(b):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(b)
    return buf.getvalue()


def raw(b):
    return enum(0, 3) + vec([u8(x) for x in b])


def structured(images, dims, payload, gzipped):
    return (enum(2, 3) + boolean(images) + struct.pack("<III", *dims)
            + vec([u8(x) for x in payload]) + boolean(gzipped))


LABELS5 = struct.pack(">II", 0x801, 5) + bytes([0, 1, 2, 9, 3])
IMAGES = struct.pack(">IIII", 0x803, 2, 2, 3) + bytes(range(12))

IDX = {
    "labels-5": raw(LABELS5),
    "labels-5-gzip": raw(gz(LABELS5)),
    "images-2x2x3": raw(IMAGES),
    "images-2x2x3-gzip": raw(gz(IMAGES)),
    # Headers claiming 2^32 - 1 items with a handful of payload bytes.
    "images-huge-count": raw(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28) + b"\0\0\0\0"),
    "labels-huge-count-gzip": raw(gz(struct.pack(">II", 0x801, 0xFFFFFFFF) + b"\1\2")),
    "images-all-dims-max": structured(True, [0xFFFFFFFF] * 3, b"\7" * 8, True),
    "images-zero-count": structured(True, [0, 28, 28], b"", False),
}


# ---- extra_layers.rs (decoded from the same bytes by the layers and model
# targets) -----------------------------------------------------------------
def x_batchnorm(features, gamma, eval_mode):
    return enum(4, 10) + u8(features) + vec(gamma) + boolean(eval_mode)


def x_conv(dims, w, b_len, stride, pad):
    return enum(5, 10) + b"".join(u8(d) for d in dims) + vec(w) + u8(b_len) + u8(stride) + u8(pad)


def x_maxpool(ph, pw, stride, pad):
    return enum(6, 10) + bytes([ph, pw, stride, pad])


def x_dropout(p, seed, frozen, eval_mode):
    return enum(3, 10) + u8(p) + u8(seed) + boolean(frozen) + boolean(eval_mode)


def x_mlpbn(i, h, o, p, eval_mode):
    return enum(8, 10) + bytes([i, h, o]) + u8(p) + boolean(eval_mode)


def x_convnet(c, hw, k, pool, classes):
    return enum(9, 10) + bytes([c, hw, k, pool, classes])


def x_forward(*ts):
    return enum(0, 4) + vec(list(ts))


def x_backward(t):
    return enum(1, 4) + t


def x_backward_twice(t):
    return enum(2, 4) + t


def x_backward_like(v):
    return enum(3, 4) + v


def x_case(f64, kind, ops):
    return boolean(f64) + kind + vec(ops)


EXTRA_MODELS = {
    # MlpBn: out-of-range labels, a label count that is not the batch, then
    # a valid batch and its backward.
    "extra-mlpbn-bad-labels": x_case(True, x_mlpbn(4, 3, 2, 51, False), [
        x_forward(tensor([3, 4], [small(1), small(-2), small(7)]), tensor([3], [label(5)])),
        x_forward(tensor([3, 4], [small(1)]), tensor([2], [label(1)])),
        x_forward(tensor([3, 4], [small(1), small(-2), small(7)]), tensor([3], [label(1), label(0)])),
        x_backward_like(ONE),
    ]),
    # ConvNet on 6x6 images given flat, backward twice, then an empty batch.
    "extra-convnet-flat-then-empty-f32": x_case(False, x_convnet(1, 6, 3, 2, 3), [
        x_forward(tensor([2, 36], [small(3), small(-1), small(5)]), tensor([2], [label(0), label(2)])),
        x_backward_twice(tensor([], [ONE])),
        x_forward(tensor([0, 1, 6, 6], []), tensor([0], [])),
        x_backward(tensor([], [ONE])),
    ]),
}

EXTRA = {
    # BatchNorm in training mode with a NaN in the batch, backward twice.
    "extra-batchnorm-train-nan": x_case(True, x_batchnorm(3, [small(8), small(-4)], False), [
        x_forward(tensor([4, 3], [small(1), small(-3), small(5), NAN, small(2)])),
        x_backward_twice(tensor([4, 3], [small(2), small(-1)])),
    ]),
    # Convolution with stride 2 and pad 1 in f32, then a channel mismatch.
    "extra-conv-stride-pad-f32": x_case(False, x_conv([2, 1, 3, 3], [small(1), small(-2)], 2, 2, 1), [
        x_forward(tensor([2, 1, 5, 5], [small(3), small(-5), small(1)])),
        x_backward_like(ONE),
        x_forward(tensor([1, 2, 5, 5], [small(1)])),
        x_backward(tensor([1, 2, 3, 3], [ONE])),
    ]),
    # Max pooling over all-equal values (every window a tie), then N = 0.
    "extra-maxpool-ties-and-empty": x_case(True, x_maxpool(2, 2, 2, 0), [
        x_forward(tensor([1, 1, 4, 4], [ONE])),
        x_backward_twice(tensor([1, 1, 2, 2], [ONE])),
        x_forward(tensor([0, 1, 4, 4], [])),
        x_backward(tensor([0, 1, 2, 2], [])),
    ]),
    # Frozen Dropout p = 0.5 on values with an infinity.
    "extra-dropout-frozen-inf": x_case(False, x_dropout(128, 7, True, False), [
        x_forward(tensor([3, 4], [small(3), inf()])),
        x_backward(tensor([3, 4], [ONE])),
        x_forward(tensor([3, 4], [small(3)])),
        x_backward_twice(tensor([3, 4], [small(-2)])),
    ]),
    **EXTRA_MODELS,
}
LAYERS.update(EXTRA)
MODEL.update(EXTRA_MODELS)


def main():
    for target, seeds in (("layers", LAYERS), ("model", MODEL), ("idx", IDX), ("check", CHECK)):
        d = os.path.join("fuzz", "seeds", target)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
