# Seccomp policies (policies/*.policy) embedded into the binary. Filled in by the sandbox work.
