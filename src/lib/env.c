/* env.c — placeholder, being written */
