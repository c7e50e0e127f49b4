"""snncc/sim: the numpy target's simulators (and `differentiable`, the `loihi` mode as a
PyTorch module, imported only by those who train through it).

The fast engine's kernels run on numba's OpenMP thread pool, one short parallel kernel
after another. Its threads sleep between kernels instead of spinning
(`OMP_WAIT_POLICY=PASSIVE`, unless set otherwise before snncc is imported): on a machine
shared with other jobs a spinning thread holds a core that the thread it waits for needs,
and each kernel then lasted a scheduler time slice (measured at load average 3.5 on 2
cores: 8 ms instead of 0.1 ms for a 0.1 ms kernel). OpenMP reads the setting when it is
loaded, at numba's first parallel kernel.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
