"""OANDA's side: the aiohttp transport (the terminal handler and the one place aiohttp errors
become domain errors), its connection pool, OANDA's endpoint table and the upstream health
view."""
