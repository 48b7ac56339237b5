"""VGG19 topology: 16 conv layers in five blocks (2, 2, 4, 4, 4) and a 3-layer dense head."""

import keras
from keras import layers

BLOCKS = (2, 2, 4, 4, 4)

# Full VGG19 widths (Simonyan & Zisserman 2014, configuration E).
FULL_WIDTHS = (64, 128, 256, 512, 512)


def conv_base(input_shape, widths, batch_norm, name="vgg19"):
    """Returns the VGG19 convolutional base (16 conv layers, 5 max-pools) as a Keras model.

    Layer names follow keras.applications.VGG19 (block1_conv1 ... block5_pool) so that
    weights saved from it load by name.
    """
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = inputs
    for b, (n, width) in enumerate(zip(BLOCKS, widths), start=1):
        for c in range(1, n + 1):
            x = layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm,
                              activation=None if batch_norm else "relu",
                              name=f"block{b}_conv{c}")(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"block{b}_bn{c}")(x)
                x = layers.ReLU(name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"block{b}_pool")(x)
    return keras.Model(inputs, x, name=name)


def dense_head(x, classes, hidden, dropout, name_prefix="head"):
    """Appends the three dense layers (two hidden + softmax) to a feature map."""
    x = layers.Flatten(name=f"{name_prefix}_flatten")(x)
    for i, units in enumerate(hidden, start=1):
        x = layers.Dense(units, activation="relu", name=f"{name_prefix}_fc{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name_prefix}_dropout{i}")(x)
    return layers.Dense(classes, activation="softmax", name=f"{name_prefix}_predictions")(x)
