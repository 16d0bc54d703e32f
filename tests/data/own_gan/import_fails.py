raise ImportError("this module needs a package that is not installed: fancylib")
