"""VAR editing studio: `python app.py --help` (the UI lives in the `studio` package)."""

from studio.launch import main

if __name__ == "__main__":
    main()
