"""Why a model predicted what it did: Grad-CAM heat maps over the input image."""

from cnnlab.explain.gradcam import explain_images, grad_cam, overlay

__all__ = ["explain_images", "grad_cam", "overlay"]
