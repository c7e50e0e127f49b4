"""How much Loihi's energy estimate moves when each constant moves by ±50 %.

Takes a compiled directory (`make example` writes build/em_unet.snncc), recomputes the
compile-time estimate (the expected rates scale-rates wrote into the IR) with each Loihi
constant of snncc.hw.energy.EnergyConstants scaled by 0.5 and 1.5, and prints a markdown
table: the constant, its value, and the total per crop at −50 % and +50 %. Then, for a
plausibility check against Blouw et al. 2019, the ratios of the baselines it is given to
this estimate beside theirs. Usage::

    python examples/em_unet/energy_sensitivity.py build/em_unet.snncc \\
        --baseline examples/em_unet/baselines/cpu-xeon-2vcpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from snncc.evaluate import load_compiled
from snncc.evaluate.baseline_report import compare_baselines, resolve_baselines
from snncc.evaluate.estimate import compile_estimate
from snncc.hw.energy import EnergyConstants

LOIHI = ("synop_pj", "neuron_update_active_pj", "neuron_update_idle_pj", "spike_in_tile_pj",
         "tile_hop_pj", "mean_hops_in_chip", "interchip_hops", "loihi_static_w_per_chip",
         "loihi_step_s")
# Blouw et al. 2019, Table 1: dynamic energy per inference of a keyword spotter (J)
BLOUW = {"Loihi": 0.00027, "CPU": 0.0063, "GPU": 0.0298}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("compiled", type=Path, help="a directory `snncc compile` wrote")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="baseline files (default: those beside the source model)")
    args = parser.parse_args()
    graph, report = load_compiled(args.compiled)
    macs = report["energy_estimate"]["ann"]["macs"]
    base = EnergyConstants()
    no_cpu = [0.0]  # the ANN's CPU time plays no part in Loihi's estimate
    estimate = compile_estimate(graph, macs, no_cpu, base)
    if estimate is None:
        raise SystemExit(f"{args.compiled}: no expected rates in the IR (compile with "
                         "scale-rates)")
    total = estimate["loihi"]["total"]
    print(f"Loihi per crop at T = {estimate['timesteps']}: {total * 1e3:.3f} mJ; "
          + ", ".join(f"{k} {v / total:.1%}" for k, v in estimate["loihi"].items()
                      if k != "total"))
    print("\n| constant | value | total at −50 % | total at +50 % | change |")
    print("|---|---|---|---|---|")
    for name in LOIHI:
        value = getattr(base, name)
        totals = [compile_estimate(graph, macs, no_cpu, dataclasses.replace(
            base, **{name: value * f}))["loihi"]["total"] for f in (0.5, 1.5)]
        print(f"| `{name}` | {value:g} | {totals[0] * 1e3:.3f} mJ | {totals[1] * 1e3:.3f} mJ "
              f"| ±{(totals[1] - totals[0]) / 2 / total:.1%} |")
    print(f"\nLoihi per ANN MAC: {total / macs * 1e12:.0f} pJ ({macs:,} MACs per crop)")
    print("\n| device | energy per inference | ÷ Loihi's |")
    print("|---|---|---|")
    for device, joules in BLOUW.items():
        print(f"| Blouw et al. 2019, {device} | {joules * 1e3:.3g} mJ | "
              f"{joules / BLOUW['Loihi']:.3g}× |")
    shape = graph.inputs[0].type.shape
    baselines = resolve_baselines(args.baseline, Path(report["source_model"]), shape)
    for row in compare_baselines(estimate, shape, baselines):
        for mode, r in row["per_crop"].items():
            for kind in ("board", "dynamic"):
                label = kind if row["measured"] else "time × stated power"
                if r[f"{kind}_ratio"] is not None:
                    print(f"| this U-Net, {row['device']}, {mode}, {label} | "
                          f"{r[f'ann_{kind}_j'] * 1e3:.3g} mJ | {r[f'{kind}_ratio']:.3g}× |")
    print(f"| this U-Net, Loihi (estimate) | {total * 1e3:.3g} mJ | 1× |")


if __name__ == "__main__":
    main()
