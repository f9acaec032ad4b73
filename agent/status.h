/* status.h: the status document shared by `slotctl status` and slotd's
 * GET /api/v1/status. */
#pragma once

#include <jansson.h>

#include "operation.h"

/* Builds the status document (SPEC section 1) of the agent's store. */
int status_build(Agent *a, json_t **ret);

/* Prints the document for a person. */
void status_print_text(json_t *doc, FILE *out);
