/* runtime/config.c: being written */
