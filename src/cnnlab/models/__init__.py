"""cnnlab's own architectures: what timm and torchvision lack. ``catalog`` registers them."""
