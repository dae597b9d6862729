"""The training wing: data set and split, augmentation, training objectives, weight averaging,
evaluation, model selection under shift, reports, cross-validation and release, the guard's, the
image score's and the lung segmenter's fitting, benchmarks.

It may import the serving wing (pneumo.*); the serving wing never imports it.
"""
