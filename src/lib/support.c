/* support.c — placeholder, being written */
