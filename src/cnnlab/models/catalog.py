"""Registers cnnlab's own models: the hand-written families and the zoo of specs. The registry
imports this module the first time a name is looked up."""

from cnnlab.design.zoo import register_zoo
from cnnlab.models import cifar_resnet, detectors, lenet, segmenters  # noqa: F401  (registration side effects)

register_zoo()
