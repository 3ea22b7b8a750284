/* engine: the parts of the engine interface shared by every driver. */
#include "daemon/engine/engine.h"

#include <stdlib.h>

void engine_free(struct engine *e)
{
	if (!e)
		return;
	if (e->ops && e->ops->destroy)
		e->ops->destroy(e);
	free(e);
}
