# Runs `erpsync test CONFIG` and checks it ran exactly WANT cases, all passing (so a config
# whose fixtures are silently not found fails the test).
execute_process(COMMAND ${ERPSYNC} test ${CONFIG} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "^${WANT} passed, 0 failed")
    message(FATAL_ERROR "expected '${WANT} passed, 0 failed' and exit 0, got exit ${rc}")
endif()
