"""Build hook (hatchling): compiles newsclf/_ngrams.c, the hashed n-gram counter, next to its source.

setuptools only drives the C compiler here (hatchling has no compiler support of its own); the wheel
gets the compiled module through force_include because the file is a build output, gitignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_SOURCE = "newsclf/_ngrams.c"


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        from setuptools import Distribution, Extension

        distribution = Distribution(
            {"ext_modules": [Extension("newsclf._ngrams", [_SOURCE], extra_compile_args=["-O3"])]}
        )
        command = distribution.get_command_obj("build_ext")
        command.inplace = True
        command.ensure_finalized()
        here = os.getcwd()
        os.chdir(self.root)
        try:
            command.run()
        finally:
            os.chdir(here)
        built = Path(self.root) / command.get_ext_fullpath("newsclf._ngrams")
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["force_include"][str(built)] = f"newsclf/{built.name}"
