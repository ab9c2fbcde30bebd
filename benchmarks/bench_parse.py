"""Time json.loads + structure of a 100-message Ticket against json.loads alone (target <= 2.0x)."""

from __future__ import annotations

import json
import random
import timeit

from vpsbg_support._convert import structure
from vpsbg_support.models import Ticket

TARGET_RATIO = 2.0
MESSAGES = 100
REPEATS = 15
NUMBER = 100

# Support conversations are HTML with quotes and non-ASCII text; both slow json.loads down, so
# an ASCII-only body would flatter neither side.
_TEXT = (
    "the server does not respond after the reboot , please check <p>the firewall</p> "
    'rules "eth0" interface сървърът не отговаря ünïcode 87.120.8.29 disk I/O latency'
)
_WORDS = _TEXT.split(" ")


def _message(rng: random.Random, index: int) -> dict[str, object]:
    length = rng.randint(300, 800)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(_WORDS))
    return {
        "id": 1000 + index,
        "content": " ".join(words)[:length],
        "is_customer": index % 2 == 0,
        "created_at": f"2024-10-{1 + index % 28:02d}T11:54:{index % 60:02d}.000000Z",
        "attachments": [
            {
                "id": index * 10 + n,
                "name": f"screenshot-{n}.png",
                "size": 1426 + n,
                "mimeType": "image/png",
            }
            for n in range(rng.randint(0, 2))
        ],
    }


def ticket_body(messages: int = MESSAGES, seed: int = 1) -> bytes:
    """Build a realistic Ticket response body.

    Args:
        messages: how many messages the conversation has.
        seed: random seed, so every run times the same bytes.

    Returns:
        The JSON body as bytes.
    """
    rng = random.Random(seed)
    ticket = {
        "id": 216,
        "status": "opened",
        "subject": "Server misbehaves",
        "created_at": "2024-08-02T11:57:57.000000Z",
        "updated_at": "2024-08-02T12:02:18.000000Z",
        "department": "tech-support",
        "service_label": "ubuntu-16gb - 87.120.8.29",
        "service_type": "server",
        "service_id": 2747,
        "messages": [_message(rng, i) for i in range(messages)],
    }
    return json.dumps(ticket, ensure_ascii=False).encode()


def main() -> None:
    """Print the timings and the ratio; never fails on the target (it informs, not asserts)."""
    body = ticket_body()
    ticket = structure(json.loads(body), Ticket)
    assert len(ticket.messages) == MESSAGES
    loads = timeit.Timer(lambda: json.loads(body))
    both = timeit.Timer(lambda: structure(json.loads(body), Ticket))
    # Interleaved and best-of, so a burst of load on the machine hits both sides alike.
    loads_runs, both_runs = [], []
    for _ in range(REPEATS):
        loads_runs.append(loads.timeit(NUMBER))
        both_runs.append(both.timeit(NUMBER))
    loads_ms = min(loads_runs) / NUMBER * 1000
    both_ms = min(both_runs) / NUMBER * 1000
    ratio = both_ms / loads_ms
    print(
        f"bench_parse: {len(body) / 1024:.0f} KiB, {MESSAGES} messages, "
        f"{len(ticket.attachments)} attachments; json.loads {loads_ms:.3f} ms; "
        f"loads+structure {both_ms:.3f} ms; ratio {ratio:.2f}x (target <= {TARGET_RATIO})"
    )


if __name__ == "__main__":
    main()
