/* supervisor.c — placeholder, being written */
