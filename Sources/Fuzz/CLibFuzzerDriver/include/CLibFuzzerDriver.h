#ifndef HMS_C_LIBFUZZER_DRIVER_H
#define HMS_C_LIBFUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer with the process's arguments (`-max_total_time=N`, corpus folders…) over the harness's
/// `LLVMFuzzerTestOneInput`. Returns libFuzzer's exit status; a crash does not return (libFuzzer writes
/// the input to `crash-…` and exits non-zero).
int hms_fuzz_run(int argc, char **argv);

#endif
