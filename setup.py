"""Packaging for usl_vireid_nb, driven by settings.ini (nbdev 2.4 layout; no pkg_resources, which current setuptools dropped)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

# faiss: the user asked for faiss-gpu; its wheels exist only for Linux x86_64. faiss-gpu runs CPU indexes on a machine
# without a GPU, and faiss-cpu is the same package name-space elsewhere: the two must never be installed together.
FAISS = ['faiss-gpu>=1.8; platform_system == "Linux" and platform_machine == "x86_64"',
         'faiss-cpu>=1.8; platform_system != "Linux" or platform_machine != "x86_64"']
# nbdev 2.4 with settings.ini: nbdev 3 refuses settings.ini and a bare nbdev<3 resolves a broken fastcore/execnb mix,
# so the three are pinned together (see settings.ini).
requirements = cfg.get('requirements', '').split() + FAISS
dev_requirements = cfg.get('dev_requirements', '').split()

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    license='Apache-2.0', author=cfg['author'], author_email=cfg['author_email'],
    keywords=cfg['keywords'].split(), url=cfg['git_url'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True, python_requires='>=' + cfg['min_python'],
    install_requires=requirements, extras_require={'dev': dev_requirements},
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    zip_safe=False,
    classifiers=['Development Status :: 3 - Alpha', 'Intended Audience :: Science/Research',
                 'Programming Language :: Python :: 3',
                 'Topic :: Scientific/Engineering :: Image Recognition'],
    project_urls={'Source': cfg['git_url']},
    entry_points={'console_scripts': cfg['console_scripts'].split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
