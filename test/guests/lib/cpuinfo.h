/*
 * What the CPU says about itself, for checks to the bit: the CPUID brand string, feature
 * bits the VMM sets (TSC-deadline timer, MTRR, PAT), the cache descriptors, and the MTRRs
 * the VMM programmed (read with rdmsr only when CPUID has MTRR, else it would #GP).
 */
#ifndef GUEST_CPUINFO_H
#define GUEST_CPUINFO_H

#include "guest.h"

#define MSR_MTRR_DEF_TYPE 0x2ff

/* True when CPUID leaf 1 has MTRR (and MSR_MTRR_DEF_TYPE can be read). */
bool cpuinfo_has_mtrr(void);
/*
 * INFO lines: cpu.brand=<escaped|none>, cpu.tsc_deadline, cpu.mtrr, cpu.pat (0|1, leaf 1),
 * cpu.ext_mtrr, cpu.ext_pat (0|1, leaf 0x80000001 EDX, where AMD mirrors them),
 * cpu.l1=0xECX,0xEDX and cpu.l2=0xECX,0xEDX (leaves 0x80000005/6, when present),
 * cache.N=L<level><D|I|U>,<bytes>,<sharing> (leaf 4, or 0x8000001d on AMD), and with MTRRs
 * mtrr.cap, mtrr.def_type, mtrr.fixed=<11 values> and mtrr.var.N=0xBASE,0xMASK (valid ones).
 */
void cpuinfo_report(struct guest *g);

#endif
