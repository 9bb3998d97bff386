"""Cutting an image into a sequence of patch tokens (Vision Transformer layout)."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._base import FlowBijector, check_floating


def _check_image_shape(image_shape, patch_size: int, where: str) -> tuple[int, int, int]:
    image_shape = tuple(int(n) for n in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"{where}: expected image_shape (H, W, C); got {image_shape}.")
    if int(patch_size) < 1 or image_shape[0] % patch_size or image_shape[1] % patch_size:
        raise ValueError(f"{where}: expected a patch_size >= 1 that divides the image sides "
                         f"{image_shape[0]}x{image_shape[1]}; got {patch_size}.")
    return image_shape


class Patchify(FlowBijector):
    """Forward: ``[H, W, C] -> [(H/p)(W/p), p*p*C]``, token ``(i, j)`` holding patch ``(i, j)``.

    Tokens are in row-major order of the patch grid; the ``p*p*C`` values of a token
    are the patch's rows, then columns, then channels (einops'
    ``(h hp) (w wp) c -> (h w) (hp wp c)``). A permutation of the entries, so
    log|det J| = 0; O(H W C) both ways. The event rank changes (3 -> 2), as with
    ``tfb.Reshape``. In a flow it sits on the data side as ``tfb.Invert(Patchify(...))``
    so that the normalizing direction cuts patches (`tfp_flows.layers.Patchify`).

    Dosovitskiy et al., "An Image is Worth 16x16 Words", arXiv:2010.11929; Kolesnikov
    et al., "Jet", arXiv:2412.15129.

    Examples:
        >>> b = Patchify((4, 4, 1), 2)
        >>> b.forward(tf.zeros((3, 4, 4, 1))).shape
        TensorShape([3, 4, 4])

    Args:
        image_shape: ``(H, W, C)`` of the images.
        patch_size: side ``p`` of the square patches; divides ``H`` and ``W``.
    """

    def __init__(self, image_shape, patch_size: int, validate_args: bool = False,
                 name: str = "Patchify"):
        parameters = dict(locals())
        self.image_shape = _check_image_shape(image_shape, patch_size, "Patchify")
        self.patch_size = int(patch_size)
        height, width, channels = self.image_shape
        self.grid = (height // self.patch_size, width // self.patch_size)
        self.token_shape = (self.grid[0] * self.grid[1], self.patch_size ** 2 * channels)
        super().__init__(forward_min_event_ndims=3, inverse_min_event_ndims=2,
                         is_constant_jacobian=True, validate_args=validate_args,
                         parameters=parameters, name=name)

    def _check(self, x, event_shape, what):
        check_floating(x, "Patchify")
        rank = len(event_shape)
        if x.shape.rank is not None and (x.shape.rank < rank
                                         or tuple(x.shape[-rank:]) != tuple(event_shape)):
            raise ValueError(f"Patchify: expected {what} whose last axes are "
                             f"{tuple(event_shape)}; got shape {tuple(x.shape)}.")

    def _forward(self, x):
        p, (rows, cols), channels = self.patch_size, self.grid, self.image_shape[-1]
        return self._swap_middle_axes(x, self.image_shape, "images",
                                      [rows, p, cols, p, channels], self.token_shape)

    def _inverse(self, y):
        p, (rows, cols), channels = self.patch_size, self.grid, self.image_shape[-1]
        return self._swap_middle_axes(y, self.token_shape, "tokens",
                                      [rows, cols, p, p, channels], self.image_shape)

    def _swap_middle_axes(self, x, event_shape, what, view, shape):
        """``x``'s event (``event_shape``) seen as the five axes ``view``, its second and
        third axes swapped, reshaped to ``shape``. The swap is its own inverse, so one
        view of the image (``[rows, p, cols, p, C]``) and one of the tokens (``[rows,
        cols, p, p, C]``) give both directions."""
        self._check(x, event_shape, what)
        r = x.shape.rank - len(event_shape)
        batch = tf.shape(x)[:r]
        x = tf.reshape(x, tf.concat([batch, view], 0))
        x = tf.transpose(x, list(range(r)) + [r, r + 2, r + 1, r + 3, r + 4])
        return tf.reshape(x, tf.concat([batch, shape], 0))

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], dtype=x.dtype)

    def _forward_event_shape(self, input_shape):
        return input_shape[:-3].concatenate(self.token_shape)

    def _inverse_event_shape(self, output_shape):
        return output_shape[:-2].concatenate(self.image_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], tf.constant(self.token_shape, input_shape.dtype)], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-2], tf.constant(self.image_shape, output_shape.dtype)],
                         0)
