"""Resume: training interrupted by a checkpoint and a fresh process ends with bit-identical
weights to training without interruption (same seed, same data order via set_epoch, the same
dropout masks via the checkpointed call counter)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import irflow as irf
from irflow import nn

SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    import irflow as irf
    from irflow import nn

    def build():
        nn.init.seed(0)
        model = nn.Sequential([nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2, seed=1), nn.Linear(16, 3)])
        opt = irf.optim.Adam(0.02)
        model.compile(opt, "sparse_categorical_crossentropy", ["accuracy"])
        epoch = irf.Variable(np.int64(0), name="epoch", trainable=False)
        return model, opt, epoch

    def data():
        rng = np.random.default_rng(5)
        x = rng.standard_normal((90, 6)).astype("float32")
        y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
        return irf.data.Dataset.from_tensor_slices((x, y)).shuffle(90, seed=7).batch(16)

    def run(directory, until):
        model, opt, epoch = build()
        manager = irf.train.CheckpointManager(irf.train.Checkpoint(model=model, optimizer=opt, epoch=epoch),
                                              directory, max_to_keep=2)
        manager.restore_or_initialize()
        model.fit(data(), epochs=until, checkpoint_manager=manager, verbose=0)
        return model

    if __name__ == "__main__":
        directory, until = sys.argv[1], int(sys.argv[2])
        model = run(directory, until)
        np.savez(f"{directory}/weights-{until}.npz", **model.state_dict())
''')


def test_restart_in_fresh_processes_gives_identical_weights(tmp_path):
    script = tmp_path / "resume_script.py"
    script.write_text(SCRIPT)
    ns: dict = {}
    exec(compile(SCRIPT, str(script), "exec"), ns)

    # In this process: 2 epochs, checkpoint, 2 more (fit resumes from the epoch Variable) ...
    model, opt, epoch = ns["build"]()
    manager = irf.train.CheckpointManager(irf.train.Checkpoint(model=model, optimizer=opt, epoch=epoch),
                                          tmp_path / "inproc", max_to_keep=2)
    model.fit(ns["data"](), epochs=2, checkpoint_manager=manager, verbose=0)
    after2 = model.state_dict()
    model.fit(ns["data"](), epochs=4, checkpoint_manager=manager, verbose=0)
    after4 = model.state_dict()
    assert int(opt.iterations.numpy()) == 4 * 6
    # ... equals 4 epochs in one go.
    straight, _, _ = ns["build"]()
    straight.fit(ns["data"](), epochs=4, verbose=0)
    for k, v in straight.state_dict().items():
        np.testing.assert_array_equal(after4[k], v, err_msg=k)

    # Fresh processes: 1 epoch; restart, 1 more; restart, 2 more.
    env = {**os.environ, "PYTHONPATH": str(Path(irf.__file__).resolve().parents[1])}
    run_dir = tmp_path / "runs"
    for until in (1, 2, 4):
        subprocess.run([sys.executable, str(script), str(run_dir), str(until)], check=True, env=env,
                       capture_output=True, text=True)
    for until, expected in ((2, after2), (4, after4)):
        with np.load(run_dir / f"weights-{until}.npz") as got:
            assert sorted(got.files) == sorted(expected)
            for k in expected:
                np.testing.assert_array_equal(got[k], expected[k], err_msg=f"{k} after {until} epochs")
    assert irf.train.latest_checkpoint(run_dir).endswith("ckpt-4")  # one save per epoch
    # and the weights really moved: not a test that passes by training nothing
    assert not np.array_equal(after2["layers.0.weight"], after4["layers.0.weight"])
