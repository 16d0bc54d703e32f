"""The run's nouns, written once: the ground floor every other module asks (torch-free, textual-free,
importing nothing of gantui but `errors` and `limits`).

losses        the loss families and what each implies (critic scores or probabilities, smoothing)
run_files     the names of the files and folders of a run directory
metrics       the quality metrics: key, label, unit and how a value is written
criteria      which quality figure judges checkpoints (run.best_by, [stop]) and which way is better
safetensors   the one reading of a safetensors header and of a gantui checkpoint's metadata
files         the one atomic write (temp file + fsync + rename + fsync of the folder)
"""
