"""The small library the stages share: arrays in, arrays out, plus atomic I/O.

Only ``keras_models`` imports TensorFlow; every other module stays light so that stages
which only read arrays or weights start in about a second.
"""
