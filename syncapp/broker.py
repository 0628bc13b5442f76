"""The embedded default's broker: kombu's filesystem transport, with each message complete
before a worker can see it.

kombu's own `_put` creates `<id>.<queue>.msg` and then writes into it; a worker polling the
folder can take the file in between, read an empty or partial payload and stop
("Unrecoverable error: JSONDecodeError"). Here a message is written under a name the reader
skips (`.part` at the end) and then renamed into place, which is atomic within a folder.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: written whole, then renamed to the name `_get` reads."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
