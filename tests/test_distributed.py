"""One rule for splitting work across torchrun processes and gathering what they found (engine/distributed.py)."""

import json
import os
import subprocess
import sys

from vidcls.engine.distributed import gather, my_share, rank_and_world

WORKER = """
import json, sys
from pathlib import Path
from vidcls.engine.distributed import gather, my_share, rank_and_world

rank, world = rank_and_world()
blocks = gather(my_share(list(range(10))))
# A file each: lines printed by several processes to one pipe can interleave.
Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps({"rank": rank, "world": world, "blocks": blocks}))
"""


def test_one_process_takes_everything():
    assert rank_and_world() == (0, 1)
    assert my_share([3, 1, 2]) == [3, 1, 2] and gather("mine") == ["mine"]


def test_torchrun_processes_take_contiguous_blocks_and_gather_them_in_input_order(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3", str(script),
               str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    outputs = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(3)]
    assert [out["rank"] for out in outputs] == [0, 1, 2] and {out["world"] for out in outputs} == {3}
    for out in outputs:  # every process gets every block, in rank order: together, the input in order
        assert out["blocks"] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
