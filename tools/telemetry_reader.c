/* tools/telemetry_reader.c: being written */
