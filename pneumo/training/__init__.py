"""The training wing: data set and split, augmentation, training objectives, weight averaging,
distillation, evaluation, model selection under shift, reports, the guard's fitting, benchmarks.

It may import the serving wing (pneumo.*); the serving wing never imports it.
"""
