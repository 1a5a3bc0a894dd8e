"""What a benchmark's numbers were measured on, and how it was called (imported by the scripts beside it:
`from _machine import command, machine`)."""
import os, platform
from datetime import datetime, timezone
from pathlib import Path

import torch
from usl_vireid_nb.runtime import cpu_flags, cpu_has_bf16


def machine() -> dict:
    "CPU model, cores, torch threads and version, native bf16, CUDA, the load average and the date (UTC)."
    info = Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').exists() else ''
    model = next((l.split(':', 1)[1].strip() for l in info.splitlines() if l.startswith('model name')), platform.processor())
    flags = cpu_flags()
    return {'cpu': model, 'cores': os.cpu_count(), 'torch_threads': torch.get_num_threads(), 'torch': torch.__version__,
            'avx512': 'avx512f' in flags, 'bf16': cpu_has_bf16(flags), 'cuda': torch.cuda.is_available(),
            'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            'loadavg': [round(x, 2) for x in os.getloadavg()],
            'date': datetime.now(timezone.utc).isoformat(timespec='seconds')}


def command(argv=None) -> str:
    "How the running benchmark was called, as its JSON records it: `python bench/<script> <arguments>`."
    import sys
    return ' '.join(['python', f"bench/{Path(sys.argv[0]).name}", *(sys.argv[1:] if argv is None else argv)])
