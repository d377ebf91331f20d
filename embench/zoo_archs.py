"""Architectures the zoo defines itself, beside keras.applications (named the same way in
models/zoo.yaml: `keras: SmallViT`). Each is a function `(input_shape, weights=None, **kwargs) →
keras.Model`, built with random weights like the rest of the zoo. Imported by zoo_build only (it
needs TensorFlow)."""

from __future__ import annotations

from typing import Any


def small_vit(
    input_shape: tuple[int, ...] = (224, 224, 3),
    weights: None = None,
    patch_size: int = 16,
    dim: int = 192,
    depth: int = 6,
    heads: int = 3,
    mlp_dim: int = 384,
    classes: int = 1000,
    classifier_activation: str | None = None,
) -> Any:
    """A small Vision Transformer (ViT-Ti/16's width, half its depth): patches by a strided
    convolution, a learned position embedding, pre-norm blocks of multi-head self-attention and an
    MLP with GELU (tanh approximation), mean-pooled tokens, a linear classifier."""
    import keras  # noqa: PLC0415

    if weights is not None:
        raise ValueError("SmallViT has no pretrained weights: the zoo builds it with weights=None")
    layers = keras.layers
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(dim, patch_size, strides=patch_size, name="patch_embed")(inputs)
    tokens = (input_shape[0] // patch_size) * (input_shape[1] // patch_size)
    x = layers.Reshape((tokens, dim))(x)
    x = _PositionEmbedding(tokens, dim, name="pos_embed")(x)
    for i in range(depth):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln1")(x)
        h = layers.MultiHeadAttention(heads, dim // heads, name=f"block{i}_attn")(h, h)
        x = layers.Add()([x, h])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln2")(x)
        h = layers.Dense(mlp_dim, name=f"block{i}_mlp1")(h)
        h = layers.Activation(_tanh_gelu, name=f"block{i}_gelu")(h)
        h = layers.Dense(dim, name=f"block{i}_mlp2")(h)
        x = layers.Add()([x, h])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(classes, activation=classifier_activation, name="head")(x)
    return keras.Model(inputs, outputs, name="small_vit")


def _tanh_gelu(x: Any) -> Any:
    """GELU's tanh approximation (as in BERT and many ViT ports): the exact GELU's erfc has no ONNX
    operator, so tf2onnx's file of it does not load in ONNX Runtime (recorded for ConvNeXtTiny)."""
    import keras  # noqa: PLC0415

    return keras.activations.gelu(x, approximate=True)


def _position_embedding_class() -> Any:
    import keras  # noqa: PLC0415

    class PositionEmbedding(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self, tokens: int, dim: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.tokens, self.dim = tokens, dim

        def build(self, input_shape: Any) -> None:
            init = keras.initializers.RandomNormal(stddev=0.02)
            self.table = self.add_weight(shape=(1, self.tokens, self.dim), initializer=init, name="table")

        def call(self, x: Any) -> Any:
            return x + self.table

    return PositionEmbedding


def _PositionEmbedding(tokens: int, dim: int, name: str) -> Any:
    return _position_embedding_class()(tokens, dim, name=name)


ARCHITECTURES = {"SmallViT": small_vit}
