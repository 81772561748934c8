/* runtime/telemetry.c: being written */
