# The DSDT is written in ASL (core/dsdt.asl) and compiled by iasl at build time; the AML
# is embedded into the binary with .incbin. Filled in by the ACPI work.
