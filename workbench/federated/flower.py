"""The FedAvg protocol on Flower's Message API: a `ClientApp` that trains on its shard and sends a compressed
delta, and Flower's `FedAvg` strategy, which the server extends only to decode those deltas before its own
weighted averaging (`aggregate_arrayrecords`) and to add the mean delta to the global weights.

Two engines run the same apps:

* ``"inprocess"`` (the default): `InProcessGrid` hands each message to the `ClientApp` in this process, after a
  round trip through Flower's protobuf serialisation (the bytes a deployment sends over gRPC). Why not Ray by
  default: measured here (2 shared cores), `flwr.simulation.run_simulation` took 23-27 s for three rounds of a
  client that does nothing, and its first round sampled 2 or 4 of 4 nodes depending on how fast Ray's actors
  came up (FedAvg samples among the nodes connected so far), so two runs with one seed gave different models.
* ``"ray"``: `flwr.simulation.run_simulation` (Flower's simulation engine, Ray actors). Every node is awaited
  (``min_available_nodes = clients``) and replies are averaged in client order, so it computes the same rounds.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import numpy as np

PAYLOAD_KEY = "update"


@contextmanager
def offline_flower() -> Iterator[None]:
    """Flower and Ray with telemetry and usage statistics off (nothing leaves the machine), logs quiet."""
    import logging

    os.environ["FLWR_TELEMETRY_ENABLED"] = "0"  # read when flwr is first imported
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    logger = logging.getLogger("flwr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def wire_bytes(message: Any) -> int:
    """Length of `message` serialised as Flower's protobuf `Message` (what gRPC carries in a deployment)."""
    from flwr.common.serde import message_to_proto

    return len(message_to_proto(message).SerializeToString())


def round_trip(message: Any) -> Any:
    """`message` serialised to bytes and parsed back, as a receiver gets it."""
    from flwr.common.serde import message_from_proto, message_to_proto
    from flwr.proto.message_pb2 import Message as ProtoMessage

    proto = ProtoMessage()
    proto.ParseFromString(message_to_proto(message).SerializeToString())
    return message_from_proto(proto)


def make_grid(client_app: Any, clients: int) -> Any:
    """An in-process `flwr.serverapp.Grid` of `clients` nodes (ids 1..clients, partition ids 0..clients-1)."""
    from flwr.app import Context, RecordDict
    from flwr.serverapp import Grid

    class InProcessGrid(Grid):
        """Delivers each message to `client_app` here, synchronously, in node order; Flower's serialisation
        both ways. Only `send_and_receive` (all that `Strategy.start` calls) is needed."""

        def __init__(self) -> None:
            self._run = None
            self.contexts = {i + 1: Context(run_id=1, node_id=i + 1, state=RecordDict(), run_config={},
                                            node_config={"partition-id": i, "num-partitions": clients})
                             for i in range(clients)}

        def set_run(self, run: Any) -> None:
            self._run = run

        @property
        def run(self) -> Any:
            return self._run

        def create_message(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the in-process grid only sends the strategy's own messages")

        def get_node_ids(self) -> Iterable[int]:
            return list(self.contexts)

        def push_messages(self, messages: Iterable[Any]) -> Iterable[str]:
            raise NotImplementedError("use send_and_receive")

        def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Any]:
            raise NotImplementedError("use send_and_receive")

        def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None = None) -> Iterable[Any]:
            ordered = sorted(messages, key=lambda m: m.metadata.dst_node_id)
            return [round_trip(client_app(round_trip(m), self.contexts[m.metadata.dst_node_id])) for m in ordered]

    return InProcessGrid()


@contextmanager
def task_identity() -> Iterator[None]:
    """Flower's process-wide run identity, which `Message` reads, set for an in-process run and restored after."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = {k: getattr(TaskIdentity, k) for k in ("_task_id", "_run_id", "_node_id")}
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(TaskIdentity, k, v)


def make_client_app(train: Callable[[int, int, list[np.ndarray]], tuple[bytes, int, float]]) -> Any:
    """A `ClientApp` whose train handler calls ``train(partition, round, global arrays) -> (blob, n, loss)``."""
    from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def handle(msg: Any, context: Any) -> Any:
        pid = int(context.node_config["partition-id"])
        blob, n, loss = train(pid, int(msg.content["config"]["server-round"]),
                              msg.content["arrays"].to_numpy_ndarrays())
        payload = ArrayRecord({PAYLOAD_KEY: Array(np.frombuffer(blob, np.uint8))})
        metrics = MetricRecord({"num-examples": n, "partition-id": pid, "train-loss": loss})
        return Message(RecordDict({"arrays": payload, "metrics": metrics}), reply_to=msg)

    return app


def make_strategy(clients: int, shapes: dict[str, tuple[int, ...]], decode: Callable[[bytes], dict],
                  log: list[dict[str, Any]]) -> Any:
    """Flower's `FedAvg` over decoded deltas; each round appends its bytes and losses to `log`."""
    from flwr.app import Array, ArrayRecord, RecordDict
    from flwr.serverapp.strategy import FedAvg
    from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

    class DeltaFedAvg(FedAvg):
        """FedAvg whose clients send compressed deltas: decode, average as FedAvg does, add to the global."""

        current: ArrayRecord | None = None

        def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any) -> Iterable[Any]:
            self.current = arrays
            messages = list(super().configure_train(server_round, arrays, config, grid))
            log.append({"round": server_round, "download_bytes": sum(wire_bytes(m) for m in messages)})
            return messages

        def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> tuple[Any, Any]:
            good = sorted((r for r in replies if not r.has_error()),
                          key=lambda r: r.content["metrics"]["partition-id"])
            if len(good) < clients:
                bad = [r.error.reason for r in replies if r.has_error()]
                raise RuntimeError(f"round {server_round}: {clients - len(good)} client(s) failed: {bad[:2]}")
            dense = []
            for r in good:
                blob = r.content["arrays"][PAYLOAD_KEY].numpy().tobytes()
                arrays = ArrayRecord({k: Array(v) for k, v in decode(blob).items()})
                dense.append(RecordDict({"arrays": arrays, "metrics": r.content["metrics"]}))
            mean = aggregate_arrayrecords(dense, self.weighted_by_key)  # Flower's FedAvg weighting
            now = self.current.to_numpy_ndarrays()
            new = ArrayRecord({k: Array((w + mean[k].numpy()).astype(np.float32))
                               for k, w in zip(shapes, now)})
            log[-1].update(
                upload_bytes=sum(wire_bytes(r) for r in good),
                payload_bytes=sum(r.content["arrays"][PAYLOAD_KEY].numpy().nbytes for r in good),
                client_upload_bytes=[wire_bytes(r) for r in good],
                train_loss=float(np.average([r.content["metrics"]["train-loss"] for r in good],
                                            weights=[r.content["metrics"]["num-examples"] for r in good])))
            return new, None

    return DeltaFedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=clients,
                       min_available_nodes=clients)


def run(engine: str, *, clients: int, rounds: int, initial: dict[str, np.ndarray], client_app: Any, strategy: Any,
        evaluate: Callable[[int, list[np.ndarray]], dict[str, float]], ray_cpus: int = 1) -> dict[int, dict]:
    """Run `rounds` of `strategy` with `client_app` on `engine`; the server-side metrics per round (0: initial)."""
    from flwr.app import Array, ArrayRecord, MetricRecord

    metrics: dict[int, dict] = {}

    def evaluate_fn(server_round: int, arrays: Any) -> Any:
        metrics[server_round] = evaluate(server_round, arrays.to_numpy_ndarrays())
        return MetricRecord({k: float(v) for k, v in metrics[server_round].items()})

    start = ArrayRecord({k: Array(v) for k, v in initial.items()})
    if engine == "inprocess":
        with task_identity():
            strategy.start(grid=make_grid(client_app, clients), initial_arrays=start, num_rounds=rounds,
                           evaluate_fn=evaluate_fn)
        return metrics
    import warnings

    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    server = ServerApp()

    @server.main()
    def main(grid: Any, context: Any) -> None:
        strategy.start(grid=grid, initial_arrays=start, num_rounds=rounds, evaluate_fn=evaluate_fn)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_simulation(server_app=server, client_app=client_app, num_supernodes=clients,
                       backend_config={"client_resources": {"num_cpus": 1},
                                       "init_args": {"num_cpus": ray_cpus, "include_dashboard": False,
                                                     "log_to_driver": False}})
    return metrics
