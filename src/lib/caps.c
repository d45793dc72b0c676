/* caps.c — placeholder, being written */
