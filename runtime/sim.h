/*
 * runtime/sim.h — simulated time for builds under SimGrid SMPI (-DMOERUN_SMPI=ON,
 * docs/simulation.md).
 *
 * Under SMPI the ranks run as SimGrid actors on one machine and MPI_Wtime returns simulated
 * time. moerun charges its CPU work explicitly instead of letting SimGrid time the real
 * code (smpirun runs with --cfg=smpi/simulate-computation:no, set by jobs/smpi/run.sh):
 *   - gate and expert GEMMs: FLOPs / (sim_gflops * 1e9) seconds;
 *   - exchange packing and unpacking: payload bytes / (sim_copy_gbs * 1e9) seconds.
 * With sim_compute = model the expert FFNs are not executed at all (their output is not
 * used, every layer is gated on the step's input tokens, and large buffers may be shared
 * between simulated ranks: SimGrid's auto-shared-malloc); with real they are executed and
 * the same time is charged. In MPI builds every call here is a no-op.
 *
 * Always: the charged time is a function of the counts (rows, bytes) alone, never of the
 * machine running the simulation, so a simulated run is repeatable.
 */
#ifndef MOERUN_RUNTIME_SIM_H
#define MOERUN_RUNTIME_SIM_H

#include <mpi.h>

#include "moerun/config.h"

/* 1 when this build runs under SimGrid SMPI. */
#ifdef MOERUN_SMPI
#define MOE_SIM_BUILD 1
#else
#define MOE_SIM_BUILD 0
#endif

#ifdef MOERUN_SMPI
/* SimGrid flop/s of one core in the platforms of jobs/smpi/platform.py: a time charged at
 * the rates below is `seconds` on a core of its own; on a host whose cores are slower
 * (fractional --node-cores) or shared by more ranks computing at once, SimGrid stretches it
 * (oversubscription, e.g. the emulated test bed on 2 physical cores). */
#define MOE_SIM_CORE_FLOPS 1e9

/* Charges `seconds` of one core's CPU time as an execution on this simulated host
 * (smpi_execute_flops: the host's CPU model shares its cores among the ranks computing). */
static inline void moe__sim_seconds(double seconds)
{
    if (seconds > 0)
        smpi_execute_flops(seconds * MOE_SIM_CORE_FLOPS);
}
#endif

/* 1 if expert compute is modelled, not executed (SMPI build and sim_compute = model). */
static inline int moe_sim_model(const moe_config_t *cfg)
{
    return MOE_SIM_BUILD && cfg->sim_compute == MOE_SIM_MODEL;
}

/* Charges `flops` floating-point operations of GEMM work as simulated time. */
static inline void moe_sim_flops(const moe_config_t *cfg, double flops)
{
#ifdef MOERUN_SMPI
    moe__sim_seconds(flops / (cfg->sim_gflops * 1e9));
#else
    (void)cfg, (void)flops;
#endif
}

/* Charges copying `bytes` bytes (packing, unpacking, reductions) as simulated time. */
static inline void moe_sim_copy(const moe_config_t *cfg, double bytes)
{
#ifdef MOERUN_SMPI
    moe__sim_seconds(bytes / (cfg->sim_copy_gbs * 1e9));
#else
    (void)cfg, (void)bytes;
#endif
}

#endif /* MOERUN_RUNTIME_SIM_H */
