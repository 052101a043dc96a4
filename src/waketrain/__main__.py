from waketrain.cli import app

app()
