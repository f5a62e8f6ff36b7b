"""Column indices of the per-layer tables the kernels read.

A network is described to compiled code by two tables with one row per dense
layer (hidden layers first, the output layer last):

* ``ints``  (L, N_INT) int64:   sizes, codes and offsets into the flat vectors;
* ``floats`` (L, N_FLOAT) float64: rates and coefficients.

Trainable tensors live in one flat vector ``theta``; BN moving statistics in a
flat vector ``buffers``.  An offset of -1 means "this layer has no such
tensor".  Plain module-level ints, so Numba folds them as constants.
"""

# ints columns
FAN_IN = 0
UNITS = 1
ACT = 2             # activation code, engine.kernels.activations
BN = 3              # BN_NONE / BN_BEFORE / BN_AFTER
TRAINABLE = 4       # 0 = frozen
KERNEL = 5          # offset of the (fan_in, units) kernel in theta
BIAS = 6            # offset of the (units,) bias in theta, or -1
GAMMA = 7           # BN scale in theta, or -1
BETA = 8            # BN shift in theta, or -1
ALPHA = 9           # PReLU slopes (units,) in theta, or -1
MOVING_MEAN = 10    # in buffers, or -1
MOVING_VAR = 11     # in buffers, or -1
UNIT_OFFSET = 12    # sum of units of the layers below: row into workspaces
ALPHA_DROPOUT = 13  # 1 = alpha dropout (SELU nets) instead of plain dropout
ACT_USES_OUTPUT = 14  # 1 = the activation's backward reads its output (recomputed when dropout changed it)
ACT_FORWARD = 15    # EXTENSION activations: address of the compiled scalar forward, else 0
ACT_DERIVATIVE = 16  # EXTENSION activations: address of the compiled scalar derivative, else 0
N_INT = 17

# floats columns
DROPOUT = 0
L1 = 1
L2 = 2
MAX_NORM = 3        # <= 0: no constraint
ACT_P0 = 4          # the activation's parameters: each catalog entry maps its Params to
ACT_P1 = 5          # these columns (Activation.slots); names per activation below
BN_MOMENTUM = 6
BN_EPSILON = 7
N_FLOAT = 8

# what the built-in activations read from the ACT_P* columns
ACT_ALPHA = ACT_P0  # leaky ReLU's negative slope, ELU's alpha
ACT_LOWER = ACT_P0  # RReLU: range of the random slope
ACT_UPPER = ACT_P1

BN_NONE = 0
BN_BEFORE = 1
BN_AFTER = 2

# loss codes
LOSS_SOFTMAX_CE = 0
LOSS_BINARY_CE = 1
LOSS_MSE = 2
