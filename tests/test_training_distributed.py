"""Training on two processes (torch.distributed, gloo on the CPU, 127.0.0.1): the loss curve of one process
with the same global batch, noise included; a cancel on one rank stops both; only rank 0 writes; the
records state the world size; the run resumes on one process and ends with the one-process weights; a
batch the processes cannot share equally is refused."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.decoders import decoder_config
from napari_dmicro.io.checkpoints import load_checkpoint, read_checkpoint_info
from napari_dmicro.system import SystemConfig
from napari_dmicro.training import DataConfig, StageConfig, TrainConfig, Trainer
from napari_dmicro.training.distributed import Processes

#: relative agreement of the two runs' losses: the processes' gradients are summed in another order
#: than one process's batch, which changes the last bits and, through Adam, the next steps slightly
LOSS_RTOL = 1e-4  # measured: 2.4e-5
#: agreement of the final weights (phase masks in radians, decoder weights; the largest step is 0.05)
WEIGHT_ATOL = 1e-3  # measured: 2.0e-4


def _config() -> TrainConfig:
    det = DetectorConfig(compression=16, max_photons=1e4, read_noise_e=2.0)  # noise: drawn for the whole batch
    enc = EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), detector=det)
    system = SystemConfig(encoder=enc, decoder=decoder_config("conv-tiny", 4))
    stages = (StageConfig(name="optics", steps=4, batch_size=4, lr=0.05, val_every=4),
              StageConfig(name="decoder", steps=4, batch_size=4, lr=1e-3, val_every=2,  # with a discriminator
                          loss="l1_perceptual_adversarial", perceptual_weight=0.0, adversarial_weight=0.1),
              StageConfig(name="end_to_end", steps=4, batch_size=4, lr=1e-4, optics_lr=1e-3, loss="l1_ssim",
                          val_every=4))
    return TrainConfig(system=system, stages=stages, data=DataConfig(patch_px=64, val_patches_per_side=1),
                       checkpoint_every_steps=3)


def _losses(events) -> list[tuple[str, int, float]]:
    return [(e.stage, e.step, e.loss) for e in events if e.kind == "step"]


#: how long a process may wait for the other before the test fails (the run takes ~10 s on idle cores;
#: this only bounds a hang, generously, for a machine whose cores are busy with other work)
STARVED_S = 600

#: rank 0 alone is cancelled after this step of stage 3: both processes must stop there together
CANCEL_AT = ("end_to_end", 2)


def _join(rank: int, world: int, port: int) -> None:
    """Join a gloo group whose store and connections listen on 127.0.0.1 only (torchrun's store would
    listen on every interface): the Trainer then uses this group."""
    import os
    from datetime import timedelta

    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME="lo",
                      OMP_NUM_THREADS="1")
    listening = None
    if rank == 0:
        listening = socket.socket()
        listening.bind(("127.0.0.1", port))
        listening.listen()
    store = dist.TCPStore("127.0.0.1", port, world, is_master=rank == 0, timeout=timedelta(seconds=STARVED_S),
                          master_listen_fd=None if listening is None else listening.fileno())
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)


def _rank(rank: int, world: int, port: int, data, outs, results) -> None:
    import threading

    import torch.distributed as dist

    _join(rank, world, port)
    torch.set_num_threads(1)
    from napari_dmicro.system import Microscope

    decode, batches = Microscope.decode, set()

    def counting_decode(self, x):  # the batches the decoder trains on (validation runs without gradients)
        if torch.is_grad_enabled():
            batches.add(int(x.shape[0]))
        return decode(self, x)

    Microscope.decode = counting_decode
    cancel, events = threading.Event(), []
    try:
        for event in Trainer(_config(), data, outs[rank], cancel=cancel, command="torchrun … dmicro train").run():
            events.append(event)
            if rank == 0 and event.kind == "step" and (event.stage, event.step) == CANCEL_AT:
                cancel.set()
        results.put((rank, _losses(events), [e.kind for e in events], batches, dist.is_initialized()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_follow_the_one_process_run_and_resume_on_one(phantom_folder, tmp_path):
    data = phantom_folder(5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the two processes: the same summation order in every convolution
    try:
        one = list(Trainer(_config(), data, tmp_path / "one").run())
    finally:
        torch.set_num_threads(threads)
    reference = _losses(one)
    assert len(reference) == 12

    outs = [tmp_path / "rank0", tmp_path / "rank1"]  # each rank its own folder: rank 1 must write nothing
    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    processes = [context.Process(target=_rank, args=(r, 2, port, data, outs, results)) for r in range(2)]
    try:
        for p in processes:
            p.start()
        got = {rank: rest for rank, *rest in (results.get(timeout=STARVED_S) for _ in range(2))}
    finally:
        for p in processes:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in processes)

    upto = reference.index(next(r for r in reference if r[:2] == CANCEL_AT)) + 1
    for rank in (0, 1):  # both train on half the batch, report the global batch's loss, stop together
        losses, kinds, batches, still_joined = got[rank]
        assert batches == {2} and still_joined  # the Trainer left the caller's process group alone
        assert [(s, k) for s, k, _ in losses] == [(s, k) for s, k, _ in reference[:upto]]
        np.testing.assert_allclose([v for *_, v in losses], [v for *_, v in reference[:upto]], rtol=LOSS_RTOL)
        assert kinds[-1] == "cancelled"

    # only rank 0 wrote; its records state the world size
    assert not outs[1].exists()
    names = {p.name for p in outs[0].iterdir()}
    assert {"model.safetensors", "last.safetensors", "train_state.safetensors", "run.json", "events.jsonl"} <= names
    assert json.loads((outs[0] / "run.json").read_text())["world_size"] == 2
    assert json.loads((tmp_path / "one" / "run.json").read_text())["world_size"] == 1
    assert read_checkpoint_info(outs[0] / "last.safetensors").card["world_size"] == 2

    # the same run, resumed on one process (the global batch does not depend on the world size)
    rest = _losses(list(Trainer(_config(), data, outs[0], resume=True).run()))
    np.testing.assert_allclose([v for *_, v in rest], [v for *_, v in reference[upto:]], rtol=LOSS_RTOL)
    run = json.loads((outs[0] / "run.json").read_text())
    assert run["world_size"] == 1 and [i["world_size"] for i in run["invocations"]] == [2, 1]
    assert read_checkpoint_info(outs[0] / "model.safetensors").card["world_size"] == 1
    mine = load_checkpoint(outs[0] / "model.safetensors")[0].state_dict()
    theirs = load_checkpoint(tmp_path / "one" / "model.safetensors")[0].state_dict()
    for key, value in theirs.items():
        torch.testing.assert_close(mine[key], value, atol=WEIGHT_ATOL, rtol=0, msg=key)


def test_each_share_gets_the_noise_the_whole_batch_would_get():
    enc = _config().system.encoder
    from napari_dmicro.optics import Encoder

    acquisition = Encoder(enc, generator=torch.Generator().manual_seed(0)).acquisition()
    camera = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(1)) + 0.1
    reference = torch.full((4,), 2.0)
    whole = acquisition.expose(camera, "differentiable", torch.Generator().manual_seed(7), reference)
    shares = [Processes(r, 2).expose(acquisition, camera[2 * r:2 * r + 2], "differentiable",
                                     torch.Generator().manual_seed(7), reference[2 * r:2 * r + 2], 4)
              for r in (0, 1)]
    assert not torch.equal(whole, camera)  # noise was added
    torch.testing.assert_close(torch.cat(shares), whole, rtol=1e-6, atol=1e-7)  # intensity units (max ~2)


def test_a_batch_the_processes_cannot_share_equally_is_refused():
    assert Processes(1, 2).share(4) == slice(2, 4)
    assert Processes().share(3) == slice(0, 3)
    with pytest.raises(ValueError, match="multiple of 2"):
        Processes(0, 2).share(3)
    with pytest.raises(ValueError, match="rank"):
        Processes(2, 2)
