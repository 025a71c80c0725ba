# Seccomp policies (policies/*.policy) are compiled into the binary: a generated C file holds
# each file's text in a table of struct policy_text (sandbox/policy.h), so the VMM needs no
# installed policy directory (--seccomp-policy-dir still overrides it).
file(GLOB CROSVM_POLICY_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/policies/*.policy)
set(CROSVM_POLICIES_C ${CMAKE_BINARY_DIR}/policies_builtin.c)
add_custom_command(
  OUTPUT ${CROSVM_POLICIES_C}
  COMMAND ${CMAKE_COMMAND} -DOUT=${CROSVM_POLICIES_C} -DDIR=${CMAKE_SOURCE_DIR}/policies
          -P ${CMAKE_SOURCE_DIR}/policies/gen_builtin.cmake
  DEPENDS ${CROSVM_POLICY_FILES} ${CMAKE_SOURCE_DIR}/policies/gen_builtin.cmake
  COMMENT "Embedding seccomp policies")
target_sources(crosvm_sandbox PRIVATE ${CROSVM_POLICIES_C})
