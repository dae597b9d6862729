"""train.py past one device, with TensorFlow's own engine (tf.distribute): `--strategy mirrored`
for several devices in one machine (MirroredStrategy), `--strategy multiworker` for several
machines (MultiWorkerMirroredStrategy, the cluster read from TF_CONFIG as TensorFlow documents it).
`--strategy one` (the default) uses none of this.

What changes with a strategy, and why:
- `--batch-size` is the global batch: each of the R replicas gets batch / R images a step, so the
  steps per epoch, the learning-rate schedule, class weights and output bias stay as they are.
- BatchNormalization uses the global batch's statistics (Keras's `synchronized=True`): otherwise
  each worker's moving statistics follow its own part of the data and the workers' weights part.
- Multi-worker: the training data are sharded by batch (tf.data's AutoShardPolicy.DATA), so each
  worker sees its part of every epoch. Validation runs on a copy of the network outside the
  strategy, on all of the split, in every worker, which then all take the same decisions (best
  epoch, early stop); Keras's metrics under the multi-worker strategy average each replica's own
  AUC, which is not the split's AUC. Only the chief writes checkpoints and the
  final files; every worker reads the chief's checkpoint on --resume (put --out on a shared
  folder, or copy the chief's checkpoint/ to the others first).
- Keras 3.15's `fit()` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585, open): it
  reduces a whole batch structure in one `strategy.reduce` call, and reduces scalar logs "along
  axis 0". `patch_keras_for_multiworker` fixes both calls, element by element, and nothing else;
  tests/test_distribute.py fails if a Keras upgrade changes what it patches.
"""

from __future__ import annotations

import json
import os

STRATEGIES = ("one", "mirrored", "multiworker")


def split_cpu(devices: int) -> None:
    """Make the CPU `devices` logical devices (to try MirroredStrategy without GPUs); before any TF op."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])


def make_strategy(name: str, cpu_devices: int = 0):
    """The tf.distribute strategy for `name` (None for "one"). Raises ValueError with a message for a
    multi-worker run without TF_CONFIG."""
    if name == "one":
        return None
    import tensorflow as tf

    if name == "mirrored":
        if cpu_devices > 1:
            split_cpu(cpu_devices)
            if not tf.config.list_physical_devices("GPU"):
                return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_devices)])
        return tf.distribute.MirroredStrategy()  # every GPU of this machine (the CPU when there is none)
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--strategy multiworker reads the cluster from the TF_CONFIG environment variable, which is not set "
                             "(README: Training on several GPUs or machines)")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
        patch_keras_for_multiworker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}")


def is_chief(strategy) -> bool:
    """Whether this process writes files: always without a strategy or on one machine; in a cluster,
    the task of type "chief", or worker 0 when there is none (TensorFlow's convention)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def workers(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))


def sharded(dataset, strategy, shard: bool = True):
    """The dataset with the sharding this strategy needs: by batch across workers for training, none
    (every worker reads everything) for validation; unchanged without a cluster."""
    if workers(strategy) <= 1:
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.DATA if shard else policy.OFF
    return dataset.with_options(options)


def synchronize_batchnorm(model, on: bool = True) -> None:
    """BatchNormalization on the global batch's statistics (all replicas), or back to local ones."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = on


_PATCHED = False


def patch_keras_for_multiworker() -> None:
    """Fix the two calls of Keras 3.15's TensorFlow trainer that fail under MultiWorkerMirroredStrategy
    (module docstring): reduce each element of the first batch on its own, and reduce scalar logs
    whole. Everything else (MirroredStrategy, one device) goes through Keras untouched."""
    global _PATCHED
    if _PATCHED:
        return
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if not (hasattr(trainer, "reduce_per_replica") and hasattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build")
            and hasattr(trainer, "_collective_all_reduce_multi_worker")):
        raise RuntimeError("this Keras version's TensorFlow trainer is not the one pneumo.training.distribute patches")
    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            def reduce(value):
                if not trainer._is_per_replica_instance(value):
                    return value
                return strategy.reduce("MEAN", value, axis=None if value.values[0].shape.rank == 0 else 0)

            return tree.map_structure(reduce, values)
        return keras_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: self.distribute_strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _PATCHED = True
