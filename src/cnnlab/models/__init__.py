"""cnnlab's own architectures: what timm and torchvision lack. Importing registers them."""

from cnnlab.models import cifar_resnet, lenet  # noqa: F401  (registration side effects)
