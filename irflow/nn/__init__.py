"""``irf.nn``: Modules, layers, initializers, losses and metrics (docs/nn.md).

>>> model = irf.nn.Sequential([irf.nn.Linear(4, 8), irf.nn.ReLU(), irf.nn.Linear(8, 2)])   # doctest: +SKIP
"""
from irflow.nn import init, losses, metrics
from irflow.nn.conv import AvgPool2d, BatchNorm, Conv2d, MaxPool2d
from irflow.nn.layers import (GELU, MLP, Dense, Dropout, Embedding, Flatten, LayerNorm, Linear, ReLU, Sequential, Sigmoid,
                              Tanh, activation)
from irflow.nn.module import Module
from irflow.nn.recurrent import GRU, LSTM, SimpleRNN
from irflow.nn.trainer import Callback, History, Trainer

BatchNorm2d = BatchNorm  # PyTorch's name for the NCHW case

__all__ = ["Module", "Linear", "Dense", "Conv2d", "MaxPool2d", "AvgPool2d", "LayerNorm", "BatchNorm", "BatchNorm2d",
           "Embedding", "Dropout", "LSTM", "GRU", "SimpleRNN", "Flatten", "Sequential", "MLP", "ReLU", "Tanh", "Sigmoid", "GELU", "activation",
           "init", "losses", "metrics", "Trainer", "Callback", "History"]
